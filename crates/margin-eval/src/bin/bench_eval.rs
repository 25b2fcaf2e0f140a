//! Benchmark of the retrieval evaluation (see `BENCHMARKS.md`).
//!
//! ```text
//! cargo run --release -p margin-eval --bin bench_eval -- [--n 100000] [--d 128]
//!     [--classes 1000] [--threads 2] [--seed 7] [--sigma 1.6] [--mrr]
//!     [--query-block 512] [--reference-block 2048]
//! ```
//!
//! Generates `n` seeded clustered embeddings (`classes` Gaussian clusters
//! with standard-normal centres and per-coordinate noise `sigma`), then in
//! one process:
//!
//! 0. the evaluation of MAP@R, R-Precision and P@1 over all queries (query =
//!    reference, own row excluded, k = largest class size − 1), kNN search
//!    included: wall time, and peak RSS (`VmHWM` from `/proc/self/status`)
//!    read right after it, before anything else allocates;
//! 1. plain GEMMs on the same `gemm` crate and thread count: `8192 × 8192 × d`
//!    (the distance step's shape class) and `2048³` (square); the better rate
//!    is the machine's reference throughput;
//! 2. the exact kNN search alone, its rate counted as `2·n²·d` flops and given
//!    as a fraction of (1).

use std::time::Instant;

use margin_eval::{
    Distance, Embeddings, KnnOptions, Labelled, RetrievalConfig, knn_with, retrieval,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Args {
    n: usize,
    d: usize,
    classes: usize,
    threads: usize,
    seed: u64,
    sigma: f64,
    mrr: bool,
    opts: KnnOptions,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        n: 100_000,
        d: 128,
        classes: 1000,
        threads: 2,
        seed: 7,
        sigma: 1.6,
        mrr: false,
        opts: KnnOptions::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--mrr" {
            a.mrr = true;
            continue;
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--n" => a.n = num(&v)?,
            "--d" => a.d = num(&v)?,
            "--classes" => a.classes = num(&v)?,
            "--threads" => a.threads = num(&v)?,
            "--seed" => a.seed = num(&v)? as u64,
            "--sigma" => a.sigma = v.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--query-block" => a.opts.query_block = num(&v)?,
            "--reference-block" => a.opts.reference_block = num(&v)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.classes == 0 || a.n < 2 * a.classes || a.d == 0 || a.threads == 0 {
        return Err("need n ≥ 2·classes, classes ≥ 1, d ≥ 1, threads ≥ 1".into());
    }
    Ok(a)
}

fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// User + system CPU seconds of this process so far (from `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Plain `m × m × d` GEMM (`C = A·Bᵀ`, row-major C) on the gemm crate,
/// repeated for at least 3 s (and 3 times); returns (GFLOP/s of the best
/// repetition by wall time, GFLOP per CPU second over all repetitions).
fn plain_gemm_gflops(m: usize, d: usize, threads: usize) -> (f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let a: Vec<f32> = (0..m * d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let b: Vec<f32> = (0..m * d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut c = vec![0.0f32; m * m];
    // Warm-up (page faults of C, thread pool start).
    c.iter_mut().for_each(|x| *x = 1.0);
    let mut best = f64::INFINITY;
    let (start, c0) = (Instant::now(), cpu_seconds());
    let mut reps = 0;
    while reps < 3 || start.elapsed().as_secs_f64() < 3.0 {
        let t = Instant::now();
        margin_linalg::gemm::gemm_abt(m, m, d, &a, &b, &mut c, threads);
        best = best.min(t.elapsed().as_secs_f64());
        reps += 1;
    }
    let cpu = cpu_seconds() - c0;
    if std::env::var_os("BENCH_DEBUG").is_some() {
        eprintln!(
            "  [{m}x{m}x{d}: {reps} reps, {:.2} s wall, {cpu:.2} CPU s]",
            start.elapsed().as_secs_f64()
        );
    }
    std::hint::black_box(&c);
    let flop = 2.0 * (m * m * d) as f64;
    (flop / best / 1e9, flop * reps as f64 / cpu / 1e9)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_eval: {e}");
            std::process::exit(2);
        }
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()
        .expect("rayon pool");
    let (n, d) = (args.n, args.d);
    let t = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let centres: Vec<f64> = (0..args.classes * d).map(|_| gaussian(&mut rng)).collect();
    let labels: Vec<i64> = (0..n).map(|i| (i % args.classes) as i64).collect();
    let data: Vec<f32> = (0..n)
        .flat_map(|i| {
            let c = i % args.classes;
            (0..d).map(move |j| (c, j)).collect::<Vec<_>>()
        })
        .map(|(c, j)| (centres[c * d + j] + args.sigma * gaussian(&mut rng)) as f32)
        .collect();
    drop(centres);
    println!(
        "data: n = {n}, d = {d}, classes = {}, sigma = {}, threads = {}, generated in {:.1} s",
        args.classes,
        args.sigma,
        args.threads,
        t.elapsed().as_secs_f64()
    );

    let emb = Embeddings::new("benchmark embeddings", &data, d).expect("valid data");
    let set = Labelled::new(emb.clone(), "benchmark labels", &labels).expect("labels");
    let k = n.div_ceil(args.classes) - 1;
    let flop = 2.0 * (n as f64) * (n as f64) * d as f64;

    println!("load average before: {}", load_average());
    let config = RetrievalConfig {
        k: None,
        recall_ks: vec![1],
        mrr: args.mrr,
    };
    let (t, c0) = (Instant::now(), cpu_seconds());
    let rep = retrieval(&set, None, Distance::Euclidean, &config).expect("retrieval");
    let (eval_s, eval_cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c0);
    println!(
        "evaluation (kNN + MAP@R, R-Precision, P@1{}): {eval_s:.2} s wall, {eval_cpu:.1} CPU s (= {:.1} s on {} uncontended cores)",
        if args.mrr { ", MRR" } else { "" },
        eval_cpu / args.threads as f64,
        args.threads
    );
    println!(
        "  k = {}, MAP@R = {:.4}, R-Precision = {:.4}, P@1 = {:.4}{}",
        rep.k,
        rep.map_at_r,
        rep.r_precision,
        rep.precision_at_1,
        rep.mrr
            .map(|m| format!(
                ", MRR = {m:.4} ({} full-rank queries)",
                rep.n_full_rank_queries
            ))
            .unwrap_or_default()
    );
    let peak_eval = peak_rss_mb();
    let gm = 8192.min(n.max(256));
    let th = args.threads as f64;
    let (shape_rate, shape_cpu) = plain_gemm_gflops(gm, d, args.threads);
    println!(
        "plain GEMM {gm}x{gm}x{d} (gemm crate, f32, {} threads): {shape_rate:.1} GFLOP/s wall; {:.1} GFLOP/s per {} busy cores",
        args.threads,
        shape_cpu * th,
        args.threads
    );
    let (square_rate, square_cpu) = plain_gemm_gflops(2048, 2048, args.threads);
    println!(
        "plain GEMM 2048x2048x2048 (gemm crate, f32, {} threads): {square_rate:.1} GFLOP/s wall; {:.1} GFLOP/s per {} busy cores",
        args.threads,
        square_cpu * th,
        args.threads
    );
    let gemm_rate = shape_rate.max(square_rate);
    let gemm_cpu_rate = (shape_cpu * th).max(square_cpu * th);
    println!(
        "reference GEMM throughput (the better of the two): {gemm_rate:.1} GFLOP/s wall, {gemm_cpu_rate:.1} per busy cores"
    );

    let (t, c0) = (Instant::now(), cpu_seconds());
    let nb = knn_with(&emb, None, k, Distance::Euclidean, &args.opts).expect("knn");
    let (knn_s, knn_cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c0);
    let knn_rate = flop / knn_s / 1e9;
    std::hint::black_box(&nb);
    drop(nb);
    println!(
        "kNN search (k = {k}, {:.2} TFLOP, GEMM + bias + top-k): {knn_s:.2} s = {knn_rate:.1} GFLOP/s = {:.0}% of plain GEMM",
        flop / 1e12,
        100.0 * knn_rate / gemm_rate
    );
    let knn_cpu_rate = flop / knn_cpu / 1e9 * th;
    println!(
        "  by CPU time ({knn_cpu:.1} CPU s): {knn_cpu_rate:.1} GFLOP/s per {} busy cores = {:.0}% of plain GEMM by CPU time",
        args.threads,
        100.0 * knn_cpu_rate / gemm_cpu_rate
    );
    println!("load average after: {}", load_average());

    println!(
        "peak RSS (VmHWM) during data generation + evaluation: {peak_eval:.0} MB; an n x n f32 distance matrix would be {:.0} MB",
        (n as f64) * (n as f64) * 4.0 / 1e6
    );
    println!(
        "peak RSS of the whole run (including the plain GEMM's {gm}x{gm} output): {:.0} MB",
        peak_rss_mb()
    );
}
