//! The wgpu suite (issue 17): margin on Burn's wgpu device against the CPU (`flex`) in
//! `f32` — every loss × distance × reducer (value and gradient), the losses with per-class
//! parameters (value, gradient w.r.t. embeddings and parameters), every miner (mined
//! tuples, and the loss on them), a few ConvNet-4 training steps, and `margin train
//! --device wgpu` for one short epoch on digits.
//!
//! In CI the device is Mesa's software Vulkan (llvmpipe, `mesa-vulkan-drivers`), which
//! runs the same WGSL shaders a GPU would: every path margin takes on a GPU — Burn's own
//! ops instead of the fused CPU kernels, the losses' device path instead of their host
//! path — is exercised without a GPU. WGSL has no `f64`, so the `f64` gradient checks stay
//! on the CPU (tests/oracle.rs and friends of the `margin` crate).
//!
//! Built only with the `wgpu` feature (`.ci/test` builds the workspace with it). When the
//! machine has no wgpu adapter every test prints a loud SKIPPED line and passes, unless
//! `MARGIN_REQUIRE_WGPU=1` (set by `.ci/run`, which installs the driver) makes that a
//! failure. Burn's autotuning is off in this build (margin enables no `autotune` feature),
//! so kernel choices, and so results, repeat from run to run.
#![cfg(feature = "wgpu")]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use margin::burn::backend::DispatchDevice;
use margin::burn::module::Module;
use margin::burn::optim::{GradientsParams, SgdConfig};
use margin::burn::tensor::{Device, Tensor, TensorData};
use margin::{
    ArcFaceLossConfig, CosFaceLossConfig, NormalizedSoftmaxLossConfig, ProxyAnchorLossConfig, ProxyNcaLossConfig, SoftTripleLossConfig,
    Batch, BatchEasyHardMiner, BatchHardMiner, ContrastiveForm, ContrastiveLossConfig, CosineSimilarity, Distance, DistanceWeightedMiner,
    DotProductSimilarity, FaceNetSemiHardMiner, InfoNceLoss, LossOutput, LpDistance, MetricLoss, Mined, MinerConfig, MiningStrategy, MultiSimilarityMiner,
    PairMarginMiner, Power, Reducer, ReferenceSet, SemiHardFallback, TripletMarginLossConfig, TripletMarginMiner, TripletType, Tuples,
};
use margin_data::ModelConfig;
use margin_models::BuildEncoder;
use margin_train::DeviceSpec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The wgpu device, or `None` (after a loud message) when the machine has none.
fn wgpu() -> Option<Device> {
    static DEVICE: OnceLock<Result<Device, String>> = OnceLock::new();
    match DEVICE.get_or_init(|| DeviceSpec::Wgpu(None).device().map_err(|e| e.to_string())) {
        Ok(d) => Some(d.clone()),
        Err(e) => {
            if std::env::var_os("MARGIN_REQUIRE_WGPU").is_some_and(|v| v == "1") {
                panic!("MARGIN_REQUIRE_WGPU=1 but {e}");
            }
            eprintln!("\n********************************************************************************");
            eprintln!("SKIPPED: the wgpu suite did not run: {e}");
            eprintln!("********************************************************************************\n");
            None
        }
    }
}

fn rows(seed: u64, n: usize, d: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * d).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn labels(n: usize, classes: usize) -> Vec<i64> {
    (0..n).map(|i| ((i * 7 + 3) % classes) as i64).collect()
}

fn host(t: &Tensor<2>) -> Vec<f64> {
    margin::to_host(t)
}

/// `values` as a tracked `[n, d]` f32 tensor on `device`.
fn tracked(values: &[f32], d: usize, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(values.to_vec(), [values.len() / d, d]), &device.clone().autodiff()).require_grad()
}

/// Asserts `a` (wgpu) and `b` (flex) agree to `tol` relative to `b`'s largest magnitude.
fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    let scale = b.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}[{i}]: wgpu {x} vs flex {y} (scale {scale})");
    }
}

fn distances() -> [Distance; 5] {
    [
        Distance::euclidean_normalized(),
        Distance::Lp(LpDistance { power: Power::Euclidean, normalize: false }),
        Distance::Lp(LpDistance { power: Power::SquaredEuclidean, normalize: true }),
        Distance::Cosine(CosineSimilarity),
        Distance::Dot(DotProductSimilarity { normalize: false }),
    ]
}

fn reducers() -> [Reducer; 4] {
    [Reducer::Mean, Reducer::Sum, Reducer::AvgNonZero, Reducer::Threshold { low: Some(0.01), high: Some(0.8) }]
}

/// Loss value, gradient w.r.t. the query and (when given) the reference set.
type Outcome = (f64, Vec<f64>, Option<Vec<f64>>);

/// Runs `f(query, reference)` on `device`, from the same host values, and backward.
fn outcome(device: &Device, q: &[f32], r: Option<&[f32]>, d: usize, f: &dyn Fn(Tensor<2>, Option<Tensor<2>>) -> LossOutput) -> Outcome {
    let x = tracked(q, d, device);
    let rt = r.map(|r| tracked(r, d, device));
    let out = f(x.clone(), rt.clone());
    let value = margin::to_host(&out.loss)[0];
    let grads = out.loss.backward();
    (value, host(&x.grad(&grads).expect("the query is tracked")), rt.map(|r| host(&r.grad(&grads).expect("the reference is tracked"))))
}

fn compare(gpu: &Device, q: &[f32], r: Option<&[f32]>, d: usize, tol: f64, what: &str, f: &dyn Fn(Tensor<2>, Option<Tensor<2>>) -> LossOutput) {
    let g = outcome(gpu, q, r, d, f);
    let c = outcome(&Device::flex(), q, r, d, f);
    assert!(c.0.is_finite() && g.0.is_finite(), "{what}: finite losses ({} / {})", g.0, c.0);
    assert!((g.0 - c.0).abs() <= tol * (1.0 + c.0.abs()), "{what}: value wgpu {} vs flex {}", g.0, c.0);
    close(&g.1, &c.1, tol, &format!("{what}: grad query"));
    if let (Some(a), Some(b)) = (&g.2, &c.2) {
        close(a, b, tol, &format!("{what}: grad reference"));
    }
}

/// Every loss × distance × reducer on all valid tuples, with and without a reference set
/// (the fused losses' device path on wgpu, their host path on flex).
#[test]
fn every_loss_distance_and_reducer_matches_flex() {
    let Some(gpu) = wgpu() else { return };
    let (n, m, d) = (40, 24, 8);
    let (q, r) = (rows(1, n, d), rows(2, m, d));
    let (ql, rl) = (labels(n, 5), labels(m, 4));
    let mut cases = 0;
    for distance in distances() {
        for reducer in reducers() {
            for (name, smooth, swap) in [("triplet", false, false), ("triplet-smooth", true, false), ("triplet-swap", false, true)] {
                let loss = TripletMarginLossConfig::new().with_margin(0.2).with_distance(distance).with_reducer(reducer).with_smooth(smooth).with_swap(swap).init().unwrap();
                for reference in [false, true] {
                    let what = format!("{name} {} {reducer:?} reference {reference}", distance.describe());
                    compare(&gpu, &q, reference.then_some(&r[..]), d, 2e-4, &what, &|x, rt| {
                        let b = Batch::labelled(x, &ql);
                        let b = match rt {
                            Some(e) => b.with_reference(ReferenceSet { embeddings: e, labels: &rl }),
                            None => b,
                        };
                        loss.forward(b, Tuples::All).unwrap()
                    });
                    cases += 1;
                }
            }
            for form in [ContrastiveForm::Linear, ContrastiveForm::Squared] {
                // Margins in the distance's own direction (a similarity's positives sit above).
                let (pos, neg) = if matches!(distance, Distance::Cosine(_) | Distance::Dot(_)) { (0.9, 0.1) } else { (0.1, 0.9) };
                let loss = ContrastiveLossConfig::new().with_form(form).with_pos_margin(pos).with_neg_margin(neg).with_distance(distance).with_reducer(reducer).init().unwrap();
                let what = format!("contrastive {form:?} {} {reducer:?}", distance.describe());
                compare(&gpu, &q, None, d, 2e-4, &what, &|x, _| loss.forward(Batch::labelled(x, &ql), Tuples::All).unwrap());
                cases += 1;
            }
        }
    }
    let info = InfoNceLoss::new(0.1).unwrap();
    compare(&gpu, &q, None, d, 2e-4, "info-nce labelled", &|x, _| info.forward(Batch::labelled(x, &ql), Tuples::All).unwrap());
    assert!(cases >= 5 * 4 * 8, "{cases} cases");
}

/// Every miner configuration (margin's tests/mining.rs list), on `distance`.
/// The losses with per-class parameters (ArcFace, CosFace, normalised softmax, Proxy-Anchor,
/// Proxy-NCA, SoftTriple) with PML's defaults: value, gradient w.r.t. the embeddings and
/// w.r.t. the parameters, on wgpu against flex (the similarity GEMM and its backward on the
/// device; the `O(B·M)` closed forms on the host either way).
#[test]
fn every_parametric_loss_matches_flex() {
    let Some(gpu) = wgpu() else { return };
    let (n, classes, d, k) = (24, 6, 8, 3);
    let q = rows(11, n, d);
    let y = labels(n, classes);
    for name in ["arcface", "cosface", "normalized-softmax", "proxy-anchor", "proxy-nca", "soft-triple"] {
        let per_class = if name == "soft-triple" { k } else { 1 };
        let p = rows(12, classes * per_class, d);
        let run = |device: &Device| -> Outcome {
            let x = tracked(&q, d, device);
            let w = tracked(&p, d, device);
            let batch = Batch::labelled(x.clone(), &y);
            let (out, wt) = match name {
                "arcface" => {
                    let l = ArcFaceLossConfig::new(classes, d).init_with(w).unwrap();
                    (l.forward(batch, Tuples::All).unwrap(), l.weights.val())
                }
                "cosface" => {
                    let l = CosFaceLossConfig::new(classes, d).init_with(w).unwrap();
                    (l.forward(batch, Tuples::All).unwrap(), l.weights.val())
                }
                "normalized-softmax" => {
                    let l = NormalizedSoftmaxLossConfig::new(classes, d).init_with(w).unwrap();
                    (l.forward(batch, Tuples::All).unwrap(), l.weights.val())
                }
                "proxy-anchor" => {
                    let l = ProxyAnchorLossConfig::new(classes, d).init_with(w).unwrap();
                    (l.forward(batch, Tuples::All).unwrap(), l.proxies.val())
                }
                "proxy-nca" => {
                    let l = ProxyNcaLossConfig::new(classes, d).init_with(w).unwrap();
                    (l.forward(batch, Tuples::All).unwrap(), l.proxies.val())
                }
                _ => {
                    let l = SoftTripleLossConfig::new(classes, d).with_centers_per_class(k).init_with(w).unwrap();
                    (l.forward(batch, Tuples::All).unwrap(), l.centers.val())
                }
            };
            let value = margin::to_host(&out.loss)[0];
            let grads = out.loss.backward();
            (value, host(&x.grad(&grads).expect("the embeddings are tracked")), Some(host(&wt.grad(&grads).expect("the parameters are tracked"))))
        };
        let (g, c) = (run(&gpu), run(&Device::flex()));
        assert!(g.0.is_finite() && c.0.is_finite(), "{name}: finite losses ({} / {})", g.0, c.0);
        assert!((g.0 - c.0).abs() <= 2e-4 * (1.0 + c.0.abs()), "{name}: value wgpu {} vs flex {}", g.0, c.0);
        close(&g.1, &c.1, 2e-4, &format!("{name}: ∂/∂x"));
        let (gw, cw) = (g.2.unwrap(), c.2.unwrap());
        assert!(cw.iter().any(|v| v.abs() > 1e-6), "{name}: the parameters get a gradient (the comparison can fail)");
        close(&gw, &cw, 2e-4, &format!("{name}: ∂/∂W"));
    }
}

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

/// The mined tuples, printed (to compare and to show), and how many there are.
fn tuples(m: &Mined) -> (String, usize) {
    match m {
        Mined::Triplets(t) => (format!("{:?}", t.triplets.iter().collect::<Vec<_>>()), t.triplets.len()),
        Mined::Pairs(p) => (format!("{:?} / {:?}", p.pairs.similar, p.pairs.dissimilar), p.pairs.similar.len() + p.pairs.dissimilar.len()),
    }
}

/// Every miner picks the same tuples on wgpu as on flex (same seed), and the triplet and
/// contrastive losses on its tuples agree in value and gradient.
#[test]
fn every_miner_mines_the_same_tuples_as_flex() {
    let Some(gpu) = wgpu() else { return };
    let (n, d) = (32, 8);
    let q = rows(3, n, d);
    let ql = labels(n, 6);
    let mut nonempty = 0;
    for distance in [Distance::euclidean_normalized(), Distance::Cosine(CosineSimilarity)] {
        for miner in all_miners(distance) {
            let what = format!("{miner:?}");
            let mined = |device: &Device| {
                let mut rng = ChaCha8Rng::seed_from_u64(7);
                miner.mine(&tracked(&q, d, device), &ql, None, &mut rng).unwrap()
            };
            let (g, c) = (mined(&gpu), mined(&Device::flex()));
            assert_eq!(tuples(&g).0, tuples(&c).0, "{what}: mined tuples");
            nonempty += usize::from(tuples(&c).1 > 0);
            let triplet = TripletMarginLossConfig::new().with_margin(0.2).with_distance(distance).init().unwrap();
            let (pos, neg) = if matches!(distance, Distance::Cosine(_)) { (0.9, 0.1) } else { (0.1, 0.9) };
            let contrastive = ContrastiveLossConfig::new().with_pos_margin(pos).with_neg_margin(neg).with_distance(distance).init().unwrap();
            for (name, loss) in [("triplet", &triplet as &dyn MetricLoss), ("contrastive", &contrastive)] {
                compare(&gpu, &q, None, d, 2e-4, &format!("{name} on {what}"), &|x, _| {
                    let mut rng = ChaCha8Rng::seed_from_u64(7);
                    loss.forward(Batch::labelled(x, &ql), Tuples::mined(&miner, &mut rng)).unwrap()
                });
            }
        }
    }
    assert!(nonempty > 20, "the miners found tuples ({nonempty} non-empty)");
}

/// A few ConvNet-4 training steps (SGD, the triplet loss on all triplets, mean reducer: no
/// discrete choice that rounding could flip, and an update linear in the gradient — Adam's
/// sign-like step would turn rounding noise in a near-zero gradient into a full `lr`): the
/// same initial weights (built on flex, moved to wgpu) give the same losses step by step and
/// the same embeddings after; wgpu takes Burn's ops (the fused kernels serve flex only).
#[test]
fn convnet4_training_steps_match_flex() {
    let Some(gpu) = wgpu() else { return };
    let (n, shape) = (24, [1usize, 28, 28]);
    let pixels = shape.iter().product::<usize>();
    let x: Vec<f32> = rows(5, n, pixels).iter().map(|v| v.abs()).collect();
    let ql = labels(n, 4);
    let cfg = ModelConfig::Convnet4 { width: 16, embedding_dim: 16, normalize: false };
    let loss = TripletMarginLossConfig::new().with_margin(0.2).with_reducer(Reducer::Mean).init().unwrap();
    let train = |device: &Device| {
        let device = device.clone().autodiff();
        // The same initial weights for both devices, drawn on the CPU from one seed (as
        // `margin train` does: drawn before the move, Burn's parameters being lazy) and afresh
        // per run: one tracked network moved to two devices shares its graph, and the second
        // run's backward finds the tape consumed.
        let cpu = Device::flex().autodiff();
        cpu.seed(0);
        let mut model = margin_train::device::drawn_now(cfg.init(&shape, &cpu).unwrap()).fork(&device);
        let mut optim = SgdConfig::new().init();
        let input = || Tensor::<2>::from_data(TensorData::new(x.clone(), [n, pixels]), &device);
        let mut losses = Vec::new();
        for _ in 0..3 {
            let xt = input();
            let image = xt.clone().reshape([n, 1, 28, 28]);
            assert_eq!(margin_models::kernels::fused_available(&image), matches!(device.clone().without_autodiff().as_dispatch(), DispatchDevice::Flex(_)), "fused kernels on flex only");
            let emb = model.forward_flat(xt, &shape);
            let out = loss.forward(Batch::labelled(emb, &ql), Tuples::All).unwrap();
            losses.push(margin::to_host(&out.loss)[0]);
            let grads = GradientsParams::from_grads(out.loss.backward(), &model);
            model = optim.step(0.05, model, grads);
        }
        (losses, host(&model.valid().forward_flat(Tensor::<2>::from_data(TensorData::new(x.clone(), [n, pixels]), &device.clone().inner()), &shape)))
    };
    let (gl, ge) = train(&gpu);
    let (cl, ce) = train(&Device::flex());
    assert!(cl.iter().all(|v| v.is_finite() && *v > 0.0), "flex losses {cl:?}");
    close(&gl, &cl, 1e-3, "ConvNet-4 step losses");
    close(&ge, &ce, 1e-3, "ConvNet-4 embeddings after 3 steps");
}

fn margin_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_margin"));
    c.env("RAYON_NUM_THREADS", "2");
    c
}

fn digits_config(dir: &std::path::Path) -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let csv = repo.join("../shared/data/sklearn_digits/digits.csv.gz");
    assert!(csv.is_file(), "{} is missing (../shared: the test data)", csv.display());
    let text = std::fs::read_to_string(repo.join("configs/digits.toml")).unwrap().replace("../shared/data/sklearn_digits/digits.csv.gz", csv.to_str().unwrap());
    let path = dir.join("digits.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `margin train --device wgpu`: one short epoch on digits trains, evaluates and records the
/// device in the run's config.toml; the same seed twice on wgpu gives the same log; the step
/// losses and the test MAP@R agree with the CPU run's (same seed) within rounding.
#[test]
fn margin_train_runs_on_wgpu() {
    if wgpu().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("margin-wgpu-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = digits_config(&dir);
    let run = |device: &str, out: &str| {
        let out = dir.join(out);
        let o = margin_bin()
            .args(["train", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap(), "--epochs", "1", "--batches-per-epoch", "4", "-q", "--device", device])
            .output()
            .unwrap();
        assert!(o.status.success(), "margin train --device {device}: {}", String::from_utf8_lossy(&o.stderr));
        let log = std::fs::read_to_string(out.join("train_log.jsonl")).unwrap();
        let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
        (out, log, metrics)
    };
    let (gpu_out, gpu_log, gpu_metrics) = run("wgpu", "gpu");
    let config_toml = std::fs::read_to_string(gpu_out.join("config.toml")).unwrap();
    assert!(config_toml.contains("device = \"wgpu\""), "the run records its device:\n{config_toml}");
    let (_, again_log, _) = run("wgpu", "gpu-again");
    let losses = |log: &str| -> Vec<f64> { log.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).filter(|v| v["kind"] == "step").map(|v| v["loss"].as_f64().unwrap()).collect() };
    assert_eq!(losses(&gpu_log).len(), 4, "{gpu_log}");
    assert_eq!(losses(&gpu_log), losses(&again_log), "same seed, same device: same losses");
    // The initial weights are drawn on the CPU for every device: the runs differ by rounding.
    let (_, cpu_log, cpu_metrics) = run("cpu", "cpu");
    close(&losses(&gpu_log), &losses(&cpu_log), 1e-3, "step losses, wgpu vs cpu");
    let map = |m: &serde_json::Value| m["test"]["retrieval"]["map_at_r"].as_f64().unwrap();
    assert!(map(&cpu_metrics) > 0.2, "the CPU run trained: {cpu_metrics}");
    assert!((map(&gpu_metrics) - map(&cpu_metrics)).abs() < 2e-3, "MAP@R wgpu {} vs cpu {}", map(&gpu_metrics), map(&cpu_metrics));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Burn's own ops under the ConvNet-4 (3×3 convolution, GEMM, batch mean and variance) on
/// wgpu against flex: the first place to look when a network's steps disagree.
#[test]
fn burn_ops_match_flex() {
    use margin::burn::tensor::module::conv2d;
    use margin::burn::tensor::ops::ConvOptions;
    let Some(gpu) = wgpu() else { return };
    let (n, c, h) = (4usize, 3usize, 12usize);
    let x = rows(1, n, c * h * h);
    let w = rows(2, 8, c * 9);
    let run = |d: &Device| {
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), [n, c, h, h]), d);
        let wt = Tensor::<4>::from_data(TensorData::new(w.clone(), [8, c, 3, 3]), d);
        let conv = conv2d(xt.clone(), wt, None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1));
        let mean = xt.clone().mean_dim(0).mean_dim(2).mean_dim(3);
        let var = xt.clone().var_bias(0);
        let mm = Tensor::<2>::from_data(TensorData::new(x.clone(), [n, c * h * h]), d).matmul(Tensor::<2>::from_data(TensorData::new(x.clone(), [c * h * h, n]), d));
        (host(&conv.reshape([n, 8 * h * h])), host(&mean.reshape([1, c])), host(&var.reshape([1, c * h * h])), host(&mm))
    };
    let (a, b) = (run(&gpu), run(&Device::flex()));
    close(&a.3, &b.3, 1e-4, "matmul");
    close(&a.1, &b.1, 1e-4, "mean");
    close(&a.2, &b.2, 1e-4, "var");
    close(&a.0, &b.0, 1e-4, "conv2d");
}
