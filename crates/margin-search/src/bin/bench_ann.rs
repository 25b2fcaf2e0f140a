//! ANN benchmark beside `../shared/peers/ann_anchor.py`: build time, memory, recall@10 and
//! queries/s over ef for margin's HNSW (f32 / f16 / i8 storage), and the exact index's
//! queries/s (which is also the ground truth), one JSON line each.
//!
//! Data: `--base B.npy --queries Q.npy` reads ann_anchor.py's exact arrays (written by
//! `benches/ann_data.py` with the same NumPy generator and seed); without them the data is
//! generated here with the same construction but a different generator (`margin_search::synth`).
//!
//! usage: bench_ann [--n 1000000] [--nq 2000] [--base B.npy --queries Q.npy] [--threads 2]
//!        [--m 16] [--efc 100] [--precision f32,f16,i8] [--ef 16,32,64,128,256] [--seed 0]
//!        [--build-threads-1]

use std::time::Instant;

use margin_search::{FlatIndex, HnswIndex, HnswParams, Index, Items, Metric, Precision, Rows, SearchParams, Spec};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn text(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// `(VmRSS, VmHWM)` in MiB. The index's growth is measured on VmRSS (resident after the
/// build minus before it): the peak (ann_anchor.py's `ru_maxrss`) would hide the build's
/// memory behind the exact index dropped just before it.
fn rss_mb() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        s.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()).map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn read_npy(path: &str) -> Result<(Vec<f32>, usize), String> {
    let a = margin_data::npy::read_npy(std::path::Path::new(path)).map_err(|e| e.to_string())?;
    let shape = a.header.shape.clone();
    if shape.len() != 2 {
        return Err(format!("{path}: expected a 2-d array, got shape {shape:?}"));
    }
    let data = match a.data {
        margin_data::npy::NpyData::F32(v) => v,
        _ => a.to_f32(),
    };
    Ok((data, shape[1]))
}

fn recall(got: &margin_search::Neighbours, truth: &margin_search::Neighbours, k: usize) -> f64 {
    let mut hit = 0usize;
    for i in 0..truth.len() {
        let t = truth.get(i).0;
        hit += got.get(i).0.iter().filter(|s| t.contains(s)).count();
    }
    hit as f64 / (truth.len() * k) as f64
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = arg(&args, "--threads", 2);
    margin_eval::init_threads(threads).map_err(|e| e.to_string())?;
    let (base, queries, dim, source) = match (text(&args, "--base"), text(&args, "--queries")) {
        (Some(b), Some(q)) => {
            let (base, d) = read_npy(&b)?;
            let (queries, dq) = read_npy(&q)?;
            if d != dq {
                return Err(format!("{b} has dimension {d} but {q} has {dq}"));
            }
            (base, queries, d, "ann_anchor.py's arrays (numpy)")
        }
        _ => {
            let n: usize = arg(&args, "--n", 1_000_000);
            let nq: usize = arg(&args, "--nq", 2000);
            let c = margin_search::synth::clustered(n, nq, 128, 1000, 1.6, 0);
            (c.base, c.queries, c.dim, "synth (same construction, ChaCha8)")
        }
    };
    let n = base.len() / dim;
    let nq = queries.len() / dim;
    let k = 10;
    let (m, efc, seed) = (arg(&args, "--m", 16usize), arg(&args, "--efc", 100usize), arg(&args, "--seed", 0u64));
    let efs: Vec<usize> = text(&args, "--ef").unwrap_or_else(|| "16,32,64,128,256".into()).split(',').filter_map(|s| s.parse().ok()).collect();
    let precisions: Vec<Precision> =
        text(&args, "--precision").unwrap_or_else(|| "f32".into()).split(',').map(Precision::parse).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let q = Rows::new("queries", &queries, dim);
    let spec = Spec::new(Metric::SquaredEuclidean, dim, "bench");

    let flat = FlatIndex::build(&spec, Items::rows(Rows::new("base", &base, dim))).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let truth = flat.search(q, k, &SearchParams::default()).map_err(|e| e.to_string())?;
    let exact_s = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"lib": "margin exact (FlatIndex)", "N": n, "queries": nq, "data": source, "threads": threads, "seconds": (exact_s * 100.0).round() / 100.0, "qps": (nq as f64 / exact_s * 10.0).round() / 10.0})
    );
    drop(flat);

    for p in precisions {
        let (rss0, _) = rss_mb();
        let params = HnswParams { m, ef_construction: efc, seed, threads: if args.iter().any(|a| a == "--build-threads-1") { 1 } else { 0 } };
        let spec = Spec { precision: p, ..spec.clone() };
        let t = Instant::now();
        let index = HnswIndex::build(&spec, params, Items::rows(Rows::new("base", &base, dim))).map_err(|e| e.to_string())?;
        let build = t.elapsed().as_secs_f64();
        let (rss1, _) = rss_mb();
        let mut res = Vec::new();
        for &ef in &efs {
            let t = Instant::now();
            let got = index.search(q, k, &SearchParams { ef, tags: None }).map_err(|e| e.to_string())?;
            let dt = t.elapsed().as_secs_f64();
            res.push(serde_json::json!({"ef": ef, "recall@10": recall(&got, &truth, k), "qps": (nq as f64 / dt * 10.0).round() / 10.0}));
        }
        println!(
            "{}",
            serde_json::json!({"lib": format!("margin hnsw {}", p.name()), "N": n, "M": m, "efConstruction": efc, "build_s": (build * 10.0).round() / 10.0,
                "rss_growth_mb": (rss1 - rss0).round(), "index_mb": (index.memory_bytes() as f64 / 1048576.0).round(), "search": res})
        );
    }
    Ok(())
}
