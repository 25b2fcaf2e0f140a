//! Shared helpers of the integration tests.
#![allow(dead_code)]

use margin_search::{Neighbours, synth};

/// Small clustered data: `n` base rows, `nq` queries, dimension `d`.
pub fn data(n: usize, nq: usize, d: usize, seed: u64) -> synth::Clustered {
    synth::clustered(n, nq, d, 50, 1.6, seed)
}

/// Mean fraction of `truth`'s neighbours that `got` found.
pub fn recall(got: &Neighbours, truth: &Neighbours) -> f64 {
    let mut hit = 0;
    let mut all = 0;
    for i in 0..truth.len() {
        let t = truth.get(i).0;
        all += t.len();
        hit += got.get(i).0.iter().filter(|s| t.contains(s)).count();
    }
    hit as f64 / all as f64
}

/// A fresh folder under the system temp dir.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("margin-search-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
