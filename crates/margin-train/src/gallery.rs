//! What the report's neighbour gallery needs from the test set: the top-5 neighbours of
//! every test item (one exact tiled kNN, `n × 5` indices and distances, never an `n × n`
//! matrix) and, for image data, the pixels of a seeded sample of queries and of their
//! neighbours as display levels in `[0, 1]` (the card's normalisation undone). Only the
//! shown samples are copied, so a large photo test set costs a few kilobytes here.

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
