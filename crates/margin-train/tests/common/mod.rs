//! Shared by the trainer's tests: a small labelled data set without data files.

use margin_data::Dataset;

/// `classes` × `per_class` feature vectors of `d` values around random class centres
/// (a fixed LCG started at `seed`: the same data on every run).
pub fn blobs(classes: usize, per_class: usize, d: usize, seed: u64) -> Dataset {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for c in 0..classes {
        let centre: Vec<f32> = (0..d).map(|_| next()).collect();
        for _ in 0..per_class {
            features.extend(centre.iter().map(|v| v + 0.5 * next()));
            labels.push(c as i64);
        }
    }
    Dataset::new("synthetic", features, vec![d], labels).unwrap()
}
