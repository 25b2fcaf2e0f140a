//! What the report's neighbour gallery needs from the test set: the top-5 neighbours of
//! every test item (one exact tiled kNN, `n × 5` indices and distances, never an `n × n`
//! matrix) and, for image data, the pixels of a seeded sample of queries and of their
//! neighbours as display levels in `[0, 1]` (the card's normalisation undone). Only the
//! shown samples are copied, so a large photo test set costs a few kilobytes here.
//!
//! From the same neighbours, what `metrics.json` reports per class ([`by_class`]): each
//! test class's nearest-neighbour precision and the most confused class pairs, keyed by
//! class **name** (Conventions: labels are class names in every file a user sees).

use std::collections::BTreeMap;

use margin_data::Dataset;
use margin_eval::{Distance, Embeddings, Neighbors};
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use rand::SeedableRng;

use crate::photo_augment::PixelMap;

/// Neighbours kept per test item.
pub const GALLERY_K: usize = 5;
/// Queries shown.
pub const GALLERY_QUERIES: usize = 10;

/// The neighbours of the test items and the pictures of the shown ones.
#[derive(Debug, Clone)]
pub struct Gallery {
    /// Top-[`GALLERY_K`] Euclidean neighbours of every test item among the others.
    pub neighbours: Neighbors<f32>,
    /// The shown queries (test indices, seeded sample, increasing).
    pub queries: Vec<usize>,
    /// `[c, h, w]` of the pictures; `None` for feature-vector data (no pictures).
    pub shape: Option<[usize; 3]>,
    /// Display levels in `[0, 1]` (`c × h × w`) of every shown query and neighbour.
    pub pixels: BTreeMap<usize, Vec<f32>>,
}

/// Builds the gallery of `test` from its embeddings (`None` when the set has fewer than
/// two items). `map` undoes the preprocessing's normalisation (`None`: not image data).
pub fn gallery(emb: &Embeddings<f32>, test: &Dataset, map: Option<PixelMap>, seed: u64) -> Result<Option<Gallery>, margin_eval::EvalError> {
    let n = test.len();
    if n < 2 {
        return Ok(None);
    }
    let neighbours = margin_eval::knn(emb, None, GALLERY_K.min(n - 1), Distance::Euclidean)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6761_6c6c);
    let mut queries = sample(&mut rng, n, GALLERY_QUERIES.min(n)).into_vec();
    queries.sort_unstable();
    let shape = match (test.sample_shape.as_slice(), map) {
        (&[c, h, w], Some(_)) if c == 1 || c == 3 => Some([c, h, w]),
        _ => None,
    };
    let mut pixels = BTreeMap::new();
    if let (Some([c, h, w]), Some(m)) = (shape, map) {
        let size = c * h * w;
        for &q in &queries {
            for i in std::iter::once(q).chain(neighbours.indices_of(q).iter().map(|&j| j as usize)) {
                pixels.entry(i).or_insert_with(|| {
                    let x = &test.features[i * size..(i + 1) * size];
                    x.iter().enumerate().map(|(k, &v)| (v * m.std[k / (h * w)] + m.mean[k / (h * w)]).clamp(0.0, 1.0)).collect()
                });
            }
        }
    }
    Ok(Some(Gallery { neighbours, queries, shape, pixels }))
}

/// Class pairs (unordered, label indices `a < b`) whose items have the other class as
/// their nearest neighbour, most frequent first (ties by labels), with counts.
pub fn confused_pairs(nearest: &[u32], labels: &[i64], top: usize) -> Vec<((i64, i64), usize)> {
    let mut counts: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for (i, &j) in nearest.iter().enumerate() {
        let (a, b) = (labels[i], labels[j as usize]);
        if a != b {
            *counts.entry((a.min(b), a.max(b))).or_default() += 1;
        }
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    v.truncate(top);
    v
}

/// Confused pairs listed in `metrics.json`.
pub const CONFUSED_PAIRS: usize = 20;

/// `metrics.json`'s `test_by_class`: per test class (by name, sorted) its sample count and
/// the fraction of its items whose nearest neighbour is of the same class (P@1), and the
/// [`CONFUSED_PAIRS`] most confused pairs as `{"classes": [name, name], "count"}`.
pub fn by_class(g: &Gallery, labels: &[i64], name: &dyn Fn(i64) -> String) -> serde_json::Value {
    let nb = &g.neighbours;
    let nearest: Vec<u32> = (0..nb.n_queries).map(|i| nb.indices_of(i)[0]).collect();
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, &j) in nearest.iter().enumerate() {
        let e = per.entry(name(labels[i])).or_default();
        e.0 += 1;
        e.1 += usize::from(labels[j as usize] == labels[i]);
    }
    let per_class: Vec<_> = per.into_iter().map(|(c, (n, hit))| serde_json::json!({"class": c, "samples": n, "precision_at_1": hit as f64 / n as f64})).collect();
    let pairs: Vec<_> = confused_pairs(&nearest, labels, CONFUSED_PAIRS).into_iter().map(|((a, b), n)| serde_json::json!({"classes": [name(a), name(b)], "count": n})).collect();
    serde_json::json!({"per_class": per_class, "confused_pairs": pairs})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confused_pairs_counts_unordered_cross_class_nearest() {
        // Item → nearest: 0→2 (0,1), 1→0 (same class, not counted), 2→1 (1,0), 3→4 (1,2),
        // 4→3 (2,1), 5→1 (2,0), 6→5 (2,1): pairs are unordered.
        let labels = [0, 0, 1, 1, 2, 2, 1];
        let nearest = [2, 0, 1, 4, 3, 1, 5];
        let p = confused_pairs(&nearest, &labels, 10);
        assert_eq!(p, vec![((1, 2), 3), ((0, 1), 2), ((0, 2), 1)]);
        assert_eq!(confused_pairs(&nearest, &labels, 1), vec![((1, 2), 3)]);
    }

    #[test]
    fn per_class_figures_and_pairs_are_keyed_by_name() {
        let labels = [0i64, 0, 1, 1, 2, 2, 1];
        let nearest = [2u32, 0, 1, 4, 3, 1, 5];
        let neighbours = Neighbors { k: 1, n_queries: 7, distance: Distance::Euclidean, indices: nearest.to_vec(), values: vec![0.0; 7] };
        let g = Gallery { neighbours, queries: vec![], shape: None, pixels: BTreeMap::new() };
        let names = ["zoe", "amir", "lin"];
        let v = by_class(&g, &labels, &|y| names[y as usize].to_string());
        assert_eq!(v["per_class"][0], serde_json::json!({"class": "amir", "samples": 3, "precision_at_1": 0.0}));
        assert_eq!(v["per_class"][2], serde_json::json!({"class": "zoe", "samples": 2, "precision_at_1": 0.5}));
        assert_eq!(v["confused_pairs"][0], serde_json::json!({"classes": ["amir", "lin"], "count": 3}));
    }
}
