//! The near-duplicate threshold of `margin dedup`, calibrated at the end of `margin train`
//! and recorded in the model card's `dedup` section (`margin_data::thresholds::DedupThresholds`).
//!
//! Identity-level thresholds (a false-accept rate on different-class pairs) would merge
//! every same-class pair; a near-duplicate is the *same* item seen again. So the pairs are:
//! **duplicates** — each held-out item (the validation classes or the calibration share,
//! never the test classes) against a copy of it made by the run's training augmentations
//! (shifts, rotations, the photo crop/flip/jitter, each copy from its own seeded stream)
//! and then re-encoded as JPEG at quality 75 (pictures; `margin_data::reencode`) — against
//! **different items** — every pair of two different held-out items, same class or not (a
//! seeded sample of `eval.max_pairs` when there are more). The threshold at a target
//! false-duplicate rate `r` is margin-eval's FAR threshold of these two lists (the largest
//! distance at which at most a share `r` of different pairs falls within), estimable when
//! `different pairs · r ≥ 10`. Targets [`DEDUP_RATES`]; `margin dedup` uses the strictest
//! estimable one by default. Distances are Euclidean between the card's L2-normalised outputs.

use burn::tensor::Device;
use margin_data::Dataset;
use margin_data::thresholds::{DedupRate, DedupThresholds};
use margin_eval::{Distance, Polarity, TarAtFar, VerificationConfig};
use margin_models::{EmbeddingNet, embed_views};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::calibrate::tidy;
use crate::photo_augment::PixelMap;
use crate::{AugmentConfig, TrainError};

/// Target false-duplicate rates, strictest first.
pub const DEDUP_RATES: [f64; 3] = [1e-4, 1e-3, 1e-2];

/// Held-out items used at most (a seeded subset beyond).
pub const MAX_ITEMS: usize = 5_000;

/// Mixed into the run's seed for the copies' augmentation streams and the item subset.
const STREAM: u64 = 0xD0D0_0CA1_1B8A_7E00;

/// How a copy is made.
#[derive(Debug, Clone, Copy)]
pub struct CopyRecipe {
    /// The run's training augmentation (`None`: none).
    pub augment: Option<AugmentConfig>,
    /// How sample values map to picture levels (`None`: feature vectors, not re-encoded).
    pub levels: Option<PixelMap>,
    /// The run's seed.
    pub seed: u64,
}

impl CopyRecipe {
    /// The recipe in words (the card's `copies`).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = self.augment {
            parts.push(format!("the training augmentations (max_shift {}, max_rotation_deg {}{})", a.max_shift, a.max_rotation_deg, if a.photo.is_some() { ", photo crop/flip/jitter" } else { "" }));
        }
        if self.levels.is_some() {
            parts.push(format!("JPEG re-encoding at quality {}", margin_data::reencode::JPEG_QUALITY));
        }
        if parts.is_empty() {
            return "an unchanged copy (feature vectors without augmentation)".into();
        }
        format!("{}, each copy from its own stream seeded by the run's seed {}", parts.join(", then "), self.seed)
    }

    /// The copy of sample `src` (index `i`, shape `shape`) into `dst`.
    fn copy(&self, src: &[f32], shape: &[usize], i: usize, dst: &mut [f32]) -> Result<(), TrainError> {
        dst.copy_from_slice(src);
        let [c, h, w] = match shape {
            [c, h, w] => [*c, *h, *w],
            _ => return Ok(()),
        };
        if let Some(a) = self.augment {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed ^ STREAM ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            crate::augment::augment_image(src, c, h, w, a.max_shift, a.max_rotation_deg, &mut rng, dst);
            if let (Some(p), Some(map)) = (a.photo, self.levels) {
                let shifted = dst.to_vec();
                p.apply(&shifted, c, h, w, &map, self.seed ^ STREAM, 0, i, dst);
            }
        }
        if let Some(m) = self.levels
            && (c == 1 || c == 3)
        {
            let n = h * w;
            for (k, plane) in dst.chunks_mut(n).enumerate() {
                plane.iter_mut().for_each(|v| *v = *v * m.std[k] + m.mean[k]);
            }
            margin_data::reencode::jpeg_round_trip(dst, c, h, w, margin_data::reencode::JPEG_QUALITY)?;
            for (k, plane) in dst.chunks_mut(n).enumerate() {
                plane.iter_mut().for_each(|v| *v = (*v - m.mean[k]) / m.std[k]);
            }
        }
        Ok(())
    }
}

/// The dedup thresholds of `model` on the held-out set `held` (`source` names it);
/// `None` when it has fewer than two items.
///
/// # Errors
/// Re-encoding or metric errors (non-finite embeddings are refused by margin-eval).
#[allow(clippy::too_many_arguments)]
pub fn calibrate_dedup(model: &EmbeddingNet, held: &Dataset, source: &str, recipe: &CopyRecipe, batch: usize, tta: margin_data::tta::TestTimeAugment, max_pairs: usize, device: &Device) -> Result<Option<DedupThresholds>, TrainError> {
    let mut idx: Vec<usize> = (0..held.len()).collect();
    if idx.len() > MAX_ITEMS {
        idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(recipe.seed ^ STREAM));
        idx.truncate(MAX_ITEMS);
        idx.sort_unstable();
    }
    let n = idx.len();
    if n < 2 {
        return Ok(None);
    }
    let items = held.select(&idx, format!("{} [dedup items]", held.name));
    let d = items.dim();
    let mut copies = items.clone();
    copies.name = format!("{} [augmented copies]", held.name);
    for (i, dst) in copies.features.chunks_mut(d).enumerate() {
        recipe.copy(items.sample(i), &items.sample_shape, idx[i], dst)?;
    }
    // The views the model card records (as `margin dedup` will embed).
    let a = embed_views(model, &items, batch, true, tta, device);
    let b = embed_views(model, &copies, batch, true, tta, device);
    let dim = a.len() / n;
    let duplicate: Vec<f64> = (0..n).map(|i| Distance::Euclidean.between(row(&a, dim, i), row(&b, dim, i))).collect();
    let singletons: Vec<i64> = (0..n as i64).collect();
    let pairs = margin_eval::make_pairs(&singletons, max_pairs.max(2), recipe.seed)?;
    let different: Vec<f64> = pairs.impostor.iter().map(|&(i, j)| Distance::Euclidean.between(row(&a, dim, i as usize), row(&a, dim, j as usize))).collect();
    let config = VerificationConfig { far_targets: DEDUP_RATES.to_vec(), ..VerificationConfig::default() };
    let m = margin_eval::verification_metrics(&duplicate, &different, Polarity::LowerIsGenuine, &config)?;
    let rates: Vec<DedupRate> = m.tar_at_far.iter().map(rate_entry).collect();
    let default_rate = rates.iter().find(|r| r.threshold.is_some()).map(|r| r.target_rate);
    Ok(Some(DedupThresholds {
        metric: Distance::Euclidean.name().to_string(),
        source: format!("{source} ({n} items)"),
        copies: recipe.describe(),
        n_duplicate: duplicate.len(),
        n_different: different.len(),
        rates,
        default_rate,
    }))
}

fn row(e: &[f32], dim: usize, i: usize) -> &[f32] {
    &e[i * dim..(i + 1) * dim]
}

fn rate_entry(t: &TarAtFar) -> DedupRate {
    match t {
        TarAtFar::Estimated { far_target, tar, far, threshold } => DedupRate {
            target_rate: *far_target,
            threshold: threshold.map(tidy),
            rate: Some(tidy(*far)),
            recall: Some(tidy(*tar)),
            note: threshold.is_none().then(|| "only accepting nothing meets this rate".to_string()),
        },
        TarAtFar::NotEstimable { far_target, impostors, required } => DedupRate {
            target_rate: *far_target,
            threshold: None,
            rate: None,
            recall: None,
            note: Some(format!("not estimable: {impostors} different-item pairs, {required} needed")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(h: usize, w: usize) -> Vec<f32> {
        (0..h * w).map(|p| if (p / w + p % w) % 5 < 2 { 0.9 } else { 0.1 }).collect()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn feature_vectors_are_copied_unchanged_and_pictures_re_encoded_in_their_own_units() {
        let src = picture(12, 12);
        let mut dst = vec![0f32; src.len()];
        let plain = CopyRecipe { augment: None, levels: None, seed: 0 };
        plain.copy(&src, &[144], 0, &mut dst).unwrap();
        assert_eq!(dst, src, "feature vectors: no re-encoding");
        assert!(plain.describe().contains("unchanged"));
        // Ink (1 − grey): mapped to levels and back, so the JPEG sees the picture, and the
        // copy is close to the source in ink units (a wrong map would clamp it away).
        let ink = CopyRecipe { augment: None, levels: Some(PixelMap { mean: [1.0; 3], std: [-1.0; 3] }), seed: 0 };
        ink.copy(&src, &[1, 12, 12], 0, &mut dst).unwrap();
        let d = max_diff(&src, &dst);
        assert!(d > 0.0 && d < 0.35, "JPEG at quality 75 changes a little: {d}");
        assert!(ink.describe().contains("JPEG re-encoding at quality 75"));
    }

    #[test]
    fn each_copy_has_its_own_seeded_augmentation() {
        let src = picture(12, 12);
        let a = AugmentConfig { max_shift: 2.0, max_rotation_deg: 10.0, rotated_classes: false, photo: None };
        let r = CopyRecipe { augment: Some(a), levels: None, seed: 3 };
        let copy = |i: usize, r: &CopyRecipe| {
            let mut d = vec![0f32; src.len()];
            r.copy(&src, &[1, 12, 12], i, &mut d).unwrap();
            d
        };
        assert_eq!(copy(5, &r), copy(5, &r), "deterministic for (seed, item)");
        assert_ne!(copy(5, &r), copy(6, &r), "another item, another draw");
        assert_ne!(copy(5, &r), copy(5, &CopyRecipe { seed: 4, ..r }), "another seed, another draw");
        assert!(r.describe().contains("max_shift 2") && r.describe().contains("seed 3"));
    }
}
