//! Seeded clustered data with `ann_anchor.py`'s construction (the peers' ANN benchmark):
//! `classes` centres ~ N(0, 1)^d, each point = a uniformly drawn centre + `sigma`·N(0, 1)^d,
//! the last `queries` points held out as queries. Same construction, **not the same
//! generator** (ChaCha8 and Box–Muller here, NumPy's PCG64 there), so figures are comparable
//! in distribution, not bit for bit; the benchmark reads NumPy's exact arrays from `.npy`
//! files when given them. Used by the tests (small N) and the benchmark.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A base set and held-out queries, row-major.
pub struct Clustered {
    /// `n × dim` base rows.
    pub base: Vec<f32>,
    /// `queries × dim` query rows.
    pub queries: Vec<f32>,
    /// The dimension.
    pub dim: usize,
}

fn normal(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    for pair in out.chunks_mut(2) {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        pair[0] = (r * t.cos()) as f32;
        if pair.len() > 1 {
            pair[1] = (r * t.sin()) as f32;
        }
    }
}

/// `n` base rows and `queries` held-out rows of dimension `dim` around `classes` centres.
pub fn clustered(n: usize, queries: usize, dim: usize, classes: usize, sigma: f32, seed: u64) -> Clustered {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut centres = vec![0f32; classes * dim];
    normal(&mut rng, &mut centres);
    let mut all = vec![0f32; (n + queries) * dim];
    let mut noise = vec![0f32; dim];
    for row in all.chunks_exact_mut(dim) {
        let c = rng.random_range(0..classes);
        normal(&mut rng, &mut noise);
        for ((o, &m), &z) in row.iter_mut().zip(&centres[c * dim..(c + 1) * dim]).zip(&noise) {
            *o = m + sigma * z;
        }
    }
    let queries = all.split_off(n * dim);
    Clustered { base: all, queries, dim }
}
