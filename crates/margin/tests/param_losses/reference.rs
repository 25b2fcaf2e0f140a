//! Naive references of the losses with per-class parameters: loops over the raw rows, each
//! formula written as the paper / PML writes it (PML's `where`, `logsumexp`, squared
//! distances), nothing shared with the library's host path.

use std::f64::consts::PI;

fn normalize(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|a| a / n).collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    normalize(a).iter().zip(normalize(b)).map(|(x, y)| x * y).sum()
}

fn sq_dist_normalized(a: &[f64], b: &[f64]) -> f64 {
    normalize(a).iter().zip(normalize(b)).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn log_sum_exp(z: &[f64]) -> f64 {
    z.iter().map(|v| v.exp()).sum::<f64>().ln()
}

fn cross_entropy(z: &[f64], y: usize) -> f64 {
    log_sum_exp(z) - z[y]
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// ArcFace (PML's `ArcFaceLoss`): margin in degrees.
pub fn arcface(x: &[Vec<f64>], y: &[usize], w: &[Vec<f64>], margin_degrees: f64, scale: f64) -> f64 {
    let m = margin_degrees.to_radians();
    mean(x.iter().zip(y).map(|(xi, &yi)| {
        let z: Vec<f64> = w
            .iter()
            .enumerate()
            .map(|(j, wj)| {
                let c = cosine(xi, wj);
                if j != yi {
                    return scale * c;
                }
                let theta = c.clamp(-1.0, 1.0).acos();
                scale * if theta <= PI - m { (theta + m).cos() } else { theta.cos() - m * m.sin() }
            })
            .collect();
        cross_entropy(&z, yi)
    }))
}

/// CosFace (PML's `CosFaceLoss`).
pub fn cosface(x: &[Vec<f64>], y: &[usize], w: &[Vec<f64>], margin: f64, scale: f64) -> f64 {
    mean(x.iter().zip(y).map(|(xi, &yi)| {
        let z: Vec<f64> = w.iter().enumerate().map(|(j, wj)| scale * (cosine(xi, wj) - if j == yi { margin } else { 0.0 })).collect();
        cross_entropy(&z, yi)
    }))
}

/// The normalised softmax (PML's `NormalizedSoftmaxLoss`: normalised dot product / τ).
pub fn normalized_softmax(x: &[Vec<f64>], y: &[usize], w: &[Vec<f64>], temperature: f64) -> f64 {
    mean(x.iter().zip(y).map(|(xi, &yi)| {
        let z: Vec<f64> = w.iter().map(|wj| cosine(xi, wj) / temperature).collect();
        cross_entropy(&z, yi)
    }))
}

/// Proxy-Anchor (PML's `ProxyAnchorLoss` with its `DivisorReducer`).
pub fn proxy_anchor(x: &[Vec<f64>], y: &[usize], p: &[Vec<f64>], margin: f64, alpha: f64) -> f64 {
    let (mut pos, mut neg, mut with_pos) = (0.0, 0.0, 0);
    for (c, pc) in p.iter().enumerate() {
        let members: Vec<usize> = (0..x.len()).filter(|&i| y[i] == c).collect();
        if !members.is_empty() {
            with_pos += 1;
            pos += (1.0 + members.iter().map(|&i| (-alpha * (cosine(&x[i], pc) - margin)).exp()).sum::<f64>()).ln();
        }
        neg += (1.0 + (0..x.len()).filter(|&i| y[i] != c).map(|i| (alpha * (cosine(&x[i], pc) + margin)).exp()).sum::<f64>()).ln();
    }
    pos / with_pos as f64 + neg / p.len() as f64
}

/// Proxy-NCA (PML's `ProxyNCALoss`: squared Euclidean between normalised rows).
pub fn proxy_nca(x: &[Vec<f64>], y: &[usize], p: &[Vec<f64>], softmax_scale: f64) -> f64 {
    mean(x.iter().zip(y).map(|(xi, &yi)| {
        let z: Vec<f64> = p.iter().map(|pc| -softmax_scale * sq_dist_normalized(xi, pc)).collect();
        let probs: Vec<f64> = z.iter().map(|v| v.exp() / z.iter().map(|u| u.exp()).sum::<f64>()).collect();
        -probs[yi].ln()
    }))
}

/// SoftTriple (PML's `SoftTripleLoss`): centre `k` of class `c` is row `c·K + k`.
pub fn soft_triple(x: &[Vec<f64>], y: &[usize], w: &[Vec<f64>], k: usize, la: f64, gamma: f64, margin: f64) -> f64 {
    let classes = w.len() / k;
    mean(x.iter().zip(y).map(|(xi, &yi)| {
        let z: Vec<f64> = (0..classes)
            .map(|c| {
                let sims: Vec<f64> = (0..k).map(|kk| cosine(xi, &w[c * k + kk])).collect();
                let norm: f64 = sims.iter().map(|s| (s / gamma).exp()).sum();
                let s: f64 = sims.iter().map(|s| (s / gamma).exp() / norm * s).sum();
                la * (s - if c == yi { margin } else { 0.0 })
            })
            .collect();
        cross_entropy(&z, yi)
    }))
}
