//! Loss + miner benchmark: forward + backward on seeded random L2-normalised
//! embeddings (D = 128, f32, labels P × K with K = 4), 2 threads. Timed region per
//! repeat, as in PML's `bench_losses.py`: [miner +] loss + backward on one leaf tensor
//! (created, like the loss objects, once per configuration).
//!
//! Prints one JSON line per configuration: median of ≥ 10 timed repeats after
//! warm-up, peak RSS (`VmHWM`) of a fresh process running only that
//! configuration, and the ratio to the GEMM bound — the FLOPs of the forward
//! and backward distance GEMMs (`3 × 2·B²·D`) at the GEMM throughput measured
//! at the start of the same run.
//!
//! ```text
//! cargo bench -p margin --bench losses                 # every configuration
//! cargo bench -p margin --bench losses -- triplet_all  # names containing a filter
//! ```
//!
//! The parent process measures the GEMM throughput, then re-executes itself
//! once per configuration (`--run NAME --gemm-gflops X`) so that each peak RSS
//! is that configuration's alone.

use std::process::Command;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use margin::{
    Batch, BatchHardMiner, ContrastiveLossConfig, MinerConfig, Mining, MultiSimilarityMiner, TripletMarginLossConfig,
    TripletMarginMiner, TripletType, Tuples,
};
use rand::{Rng, SeedableRng};
use rand::rngs::StdRng;

const D: usize = 128;
const K: usize = 4;

/// Name, batch size, PML 2.9 median ms and peak RSS GB (from the issue; `None`: not given).
const CONFIGS: [(&str, usize, f64, Option<f64>); 11] = [
    ("triplet_all_B256", 256, 14.0, Some(0.63)),
    ("triplet_all_B1024", 1024, 960.0, Some(1.8)),
    ("triplet_all_B2048", 2048, 715.0, Some(1.4)),
    ("triplet_all_B4096", 4096, f64::NAN, None),
    ("batchhard_triplet_B1024", 1024, 34.0, None),
    ("batchhard_triplet_B4096", 4096, 603.0, Some(1.2)),
    ("semihard_triplet_B512", 512, 129.0, None),
    ("semihard_triplet_B1024", 1024, 1072.0, Some(1.8)),
    ("contrastive_all_B1024", 1024, 13.6, None),
    ("contrastive_all_B4096", 4096, 388.0, Some(1.2)),
    ("multisim_contrastive_B1024", 1024, 76.0, None),
];

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// Seeded L2-normalised rows and P×K labels.
fn batch(b: usize, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x: Vec<f32> = (0..b * D).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    for row in x.chunks_mut(D) {
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= n);
    }
    let labels = (0..b).map(|i| (i / K) as i64).collect();
    (x, labels)
}

/// Runs `f` `warmup` times, then repeats for at least `min_reps` and ~`budget_s`; median ms.
fn time_ms(mut f: impl FnMut(), warmup: usize, min_reps: usize, budget_s: f64) -> (f64, usize) {
    for _ in 0..warmup {
        f();
    }
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < min_reps || (start.elapsed().as_secs_f64() < budget_s && times.len() < 200) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let n = times.len();
    (median(times), n)
}

/// GEMM throughput (GFLOP/s) of `[n, D] × [D, n]` in f32 on the plain device.
fn gemm_gflops() -> f64 {
    let n = 2048;
    let device = Device::flex();
    let (x, _) = batch(n, 7);
    let a = Tensor::<2>::from_data(TensorData::new(x, [n, D]), &device);
    let bt = a.clone().transpose();
    let (ms, _) = time_ms(
        || {
            let c = a.clone().matmul(bt.clone());
            let _ = c.slice([0..1, 0..1]).into_data();
        },
        3,
        10,
        1.0,
    );
    2.0 * (n * n * D) as f64 / (ms * 1e-3) / 1e9
}

/// The losses, built once per configuration (outside the timed region, as PML's harness does).
struct Losses {
    triplet: margin::TripletMarginLoss,
    contrastive: margin::ContrastiveLoss,
}

/// One forward + backward of configuration `name` on the leaf `emb` (created once, as
/// PML's harness does; each backward consumes its own graph); returns the number of tuples.
/// Every configuration goes through the losses' one entry point, `forward(batch, tuples)`,
/// which plans the path named in each comment.
fn step(name: &str, emb: &Tensor<2>, labels: &[i64], losses: &Losses) -> usize {
    let triplet = || &losses.triplet;
    let contrastive = || &losses.contrastive;
    let mut rng = StdRng::seed_from_u64(0);
    let batch = Batch::labelled(emb.clone(), labels);
    let out = if name.starts_with("triplet_all") {
        // Every triplet: the fused O(B²) batch-all path.
        triplet().forward(batch, Tuples::All).unwrap()
    } else if name.starts_with("batchhard_triplet") {
        // Mined on the loss's own distance matrix; one weight matrix, sparse backward.
        let miner = MinerConfig::BatchHard(BatchHardMiner::default());
        triplet().forward(batch, Tuples::mined(&miner, &mut rng)).unwrap()
    } else if name.starts_with("semihard_triplet") {
        // TripletMarginMiner(0.2, semihard) fused with the loss: triplets never listed.
        let miner = MinerConfig::TripletMargin(TripletMarginMiner::new(0.2, TripletType::Semihard));
        triplet().forward(batch, Tuples::mined(&miner, &mut rng)).unwrap()
    } else if name.starts_with("contrastive_all") {
        // Every pair: one weight matrix, pairs never listed.
        contrastive().forward(batch, Tuples::All).unwrap()
    } else if name.starts_with("multisim_contrastive") {
        // PML's default: the miner on cosine similarity, the loss on Euclidean distance.
        // Fused (pairs never listed); `MULTISIM_LISTED=1` asks for the pairs, which lists them.
        let miner = MinerConfig::MultiSimilarity(MultiSimilarityMiner::new(0.1));
        let mining = Mining::new(&miner, &mut rng);
        let mining = if std::env::var_os("MULTISIM_LISTED").is_some() { mining.returning_tuples() } else { mining };
        contrastive().forward(batch, Tuples::Mined(mining)).unwrap()
    } else {
        panic!("unknown configuration {name}");
    };
    let grads = out.loss.backward();
    let g = emb.grad(&grads).expect("embeddings are tracked");
    let _ = g.slice([0..1, 0..1]).into_data();
    out.stats.num_tuples
}

fn run_one(name: &str, gflops: f64) {
    let &(_, b, pml_ms, pml_gb) = CONFIGS.iter().find(|c| c.0 == name).expect("known configuration");
    let (x, labels) = batch(b, 42);
    let device = Device::flex().autodiff();
    let emb = Tensor::<2>::from_data(TensorData::new(x, [b, D]), &device).require_grad();
    let losses = Losses {
        triplet: TripletMarginLossConfig::new().with_margin(0.2).init().unwrap(),
        contrastive: ContrastiveLossConfig::new().with_pos_margin(0.0).with_neg_margin(1.0).init().unwrap(),
    };
    let mut tuples = 0;
    let (ms, reps) = time_ms(|| tuples = step(name, &emb, &labels, &losses), 2, 10, 3.0);
    let rss_mb = peak_rss_mb();
    let bound_ms = 3.0 * 2.0 * (b * b * D) as f64 / (gflops * 1e9) * 1e3;
    let num = |v: f64| if v.is_finite() { format!("{v:.3}") } else { "null".into() };
    println!(
        "{{\"name\":\"{name}\",\"B\":{b},\"D\":{D},\"K\":{K},\"threads\":\"{}\",\"median_ms\":{},\"repeats\":{reps},\
\"peak_rss_mb\":{},\"tuples\":{tuples},\"gemm_gflops\":{},\"gemm_bound_ms\":{},\"ratio_to_gemm_bound\":{},\
\"pml_ms\":{},\"speedup_vs_pml\":{},\"pml_peak_rss_gb\":{}}}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
        num(ms),
        num(rss_mb),
        num(gflops),
        num(bound_ms),
        num(ms / bound_ms),
        num(pml_ms),
        num(pml_ms / ms),
        pml_gb.map_or("null".into(), |g| format!("{g}")),
    );
}

fn main() {
    margin::alloc::tune();
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: first thing in main, before any other thread exists.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "2") };
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--run") {
        let name = &args[i + 1];
        let gflops = args.iter().position(|a| a == "--gemm-gflops").map_or(f64::NAN, |j| args[j + 1].parse().unwrap());
        run_one(name, gflops);
        return;
    }
    // `cargo bench` passes `--bench`; anything else not starting with `-` is a name filter.
    let filters: Vec<&String> = args.iter().skip(1).filter(|a| !a.starts_with('-')).collect();
    let gflops = gemm_gflops();
    println!(
        "{{\"name\":\"gemm_f32_2048x128x2048\",\"threads\":\"{}\",\"gflops\":{gflops:.2}}}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_default()
    );
    let exe = std::env::current_exe().expect("own path");
    for (name, ..) in CONFIGS {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let out = Command::new(&exe)
            .args(["--run", name, "--gemm-gflops", &gflops.to_string()])
            .output()
            .expect("re-executing the bench");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprintln!("{name} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}
