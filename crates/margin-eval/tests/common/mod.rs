//! Shared helpers for the integration tests.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n × d` uniform values in [-1, 1).
pub fn random_matrix(n: usize, d: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// `classes` clusters of `per_class` points in `d` dimensions, with noise `sigma`;
/// returns (data, labels).
pub fn clustered(
    classes: usize,
    per_class: usize,
    d: usize,
    sigma: f64,
    seed: u64,
) -> (Vec<f64>, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centers: Vec<f64> = (0..classes * d)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for i in 0..classes * per_class {
        let c = i % classes;
        for j in 0..d {
            data.push(centers[c * d + j] + sigma * rng.random_range(-1.0..1.0));
        }
        labels.push(c as i64 * 10 - 3);
    }
    (data, labels)
}
