//! Helpers shared by the integration tests.
#![allow(dead_code)]

use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The autodiff CPU device every test runs on.
pub fn device() -> Device {
    Device::flex().autodiff()
}

/// An f64 tensor from rows, tracked for gradients.
pub fn tensor64(rows: &[Vec<f64>]) -> Tensor<2> {
    let d = rows.first().map_or(0, |r| r.len());
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Tensor::<2>::from_data(TensorData::new(flat, [rows.len(), d]), (&device(), DType::F64)).require_grad()
}

/// Gradient of `out` w.r.t. `x` as rows.
pub fn grad_rows(x: &Tensor<2>, out: &Tensor<1>) -> Vec<Vec<f64>> {
    let grads = out.backward();
    let g = x.grad(&grads).expect("input is tracked");
    let d = g.dims()[1];
    margin::to_host(&g).chunks(d).map(|c| c.to_vec()).collect()
}

/// Seeded Gaussian-ish rows.
pub fn random_rows(seed: u64, b: usize, d: usize) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..b).map(|_| (0..d).map(|_| rng.random_range(-1.0..1.0)).collect()).collect()
}

/// Seeded labels: `classes` classes, shuffled, each used at least twice where possible.
pub fn random_labels(seed: u64, b: usize, classes: usize) -> Vec<i64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37);
    let mut labels: Vec<i64> = (0..b).map(|i| (i % classes) as i64 * 7 + 3).collect();
    for i in (1..b).rev() {
        let j = rng.random_range(0..=i);
        labels.swap(i, j);
    }
    labels
}

/// Asserts two numbers agree to `rtol·|b| + atol`.
pub fn assert_close(a: f64, b: f64, rtol: f64, atol: f64, what: &str) {
    assert!((a - b).abs() <= rtol * b.abs() + atol, "{what}: {a} vs {b} (diff {:e})", (a - b).abs());
}

/// Asserts two matrices agree element-wise.
pub fn assert_rows_close(a: &[Vec<f64>], b: &[Vec<f64>], rtol: f64, atol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: row count");
    for (i, (ra, rb)) in a.iter().zip(b).enumerate() {
        for (j, (x, y)) in ra.iter().zip(rb).enumerate() {
            assert_close(*x, *y, rtol, atol, &format!("{what}[{i}][{j}]"));
        }
    }
}

/// Central-difference gradient of `f` at `rows` (step `h`).
pub fn numeric_grad(rows: &[Vec<f64>], h: f64, f: impl Fn(&[Vec<f64>]) -> f64) -> Vec<Vec<f64>> {
    let mut g = vec![vec![0.0; rows[0].len()]; rows.len()];
    let mut x = rows.to_vec();
    for i in 0..rows.len() {
        for j in 0..rows[0].len() {
            let orig = x[i][j];
            x[i][j] = orig + h;
            let up = f(&x);
            x[i][j] = orig - h;
            let down = f(&x);
            x[i][j] = orig;
            g[i][j] = (up - down) / (2.0 * h);
        }
    }
    g
}
