//! Photo augmentation: random resized crop, horizontal flip and colour jitter
//! (brightness, contrast, saturation), torchvision's `RandomResizedCrop` +
//! `RandomHorizontalFlip` + `ColorJitter` in spirit, on the prepared `[c, h, w]` sample.
//!
//! **Deterministic per (seed, epoch, sample)**: each sample's draws come from its own
//! ChaCha8 stream, seeded by mixing the run's seed, the epoch and the sample's index —
//! never from a shared stream whose position would depend on batch composition or
//! thread timing (tested: the same triple gives the same picture, another epoch another).
//!
//! **Colour in picture units.** Samples may be normalised (`(v − mean) / std`, the
//! preprocessing's); jitter is defined on levels in `[0, 1]`, so the sample is mapped back
//! with the preprocessing's statistics ([`PixelMap`]), jittered, clamped to `[0, 1]` and
//! normalised again. Saturation needs three channels and leaves grey samples unchanged.
//! The crop is resampled bilinearly back to `h × w` (a crop of the prepared sample, not of
//! the original file: cheaper, and what a fixed-size in-memory dataset allows).

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The photo augmentation's settings (`[train.augment.photo]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotoAugment {
    /// Crop area as a fraction of the sample's, uniform in `[min, max]` (torchvision:
    /// `scale = (0.08, 1)`; the default, `(0.5, 1)`, suits small samples).
    #[serde(default = "default_crop")]
    pub crop_scale: [f64; 2],
    /// Crop aspect ratio, log-uniform in `[min, max]`.
    #[serde(default = "default_ratio")]
    pub crop_ratio: [f64; 2],
    /// Flip left-right with probability ½.
    #[serde(default = "yes")]
    pub flip: bool,
    /// Brightness factor uniform in `[1 − b, 1 + b]` (0: off).
    #[serde(default)]
    pub brightness: f64,
    /// Contrast factor uniform in `[1 − c, 1 + c]` around the mean grey level.
    #[serde(default)]
    pub contrast: f64,
    /// Saturation factor uniform in `[1 − s, 1 + s]` (RGB only).
    #[serde(default)]
    pub saturation: f64,
}

fn default_crop() -> [f64; 2] {
    [0.5, 1.0]
}
fn default_ratio() -> [f64; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}
fn yes() -> bool {
    true
}

/// How a sample's values relate to picture levels: `level = v · std + mean` per channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelMap {
    /// Per-channel means (0 when the values are levels).
    pub mean: [f32; 3],
    /// Per-channel standard deviations (1 when the values are levels).
    pub std: [f32; 3],
}

impl PixelMap {
    /// Values that are levels in `[0, 1]`.
    pub const IDENTITY: PixelMap = PixelMap { mean: [0.0; 3], std: [1.0; 3] };
}

impl PhotoAugment {
    /// Checks the ranges (`train.augment.photo.*`).
    pub fn validate(&self) -> Result<(), &'static str> {
        let [a, b] = self.crop_scale;
        let [r0, r1] = self.crop_ratio;
        if !(a > 0.0 && a <= b && b <= 1.0) {
            return Err("train.augment.photo.crop_scale must be [min, max] with 0 < min <= max <= 1");
        }
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return Err("train.augment.photo.crop_ratio must be [min, max] with 0 < min <= max");
        }
        if [self.brightness, self.contrast, self.saturation].iter().any(|v| !(0.0..1.0).contains(v)) {
            return Err("train.augment.photo brightness, contrast and saturation must be in [0, 1)");
        }
        Ok(())
    }

    /// Augments the `c × h × w` sample `src` (index `sample`, in `epoch` of a run seeded
    /// `seed`) into `dst`.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(&self, src: &[f32], c: usize, h: usize, w: usize, map: &PixelMap, seed: u64, epoch: usize, sample: usize, dst: &mut [f32]) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(mix(seed, epoch as u64, sample as u64));
        // Random resized crop (torchvision's rejection sampling, 10 tries, else the whole).
        let area = (h * w) as f64;
        let (mut ch, mut cw, mut top, mut left) = (h, w, 0, 0);
        for _ in 0..10 {
            let target = area * rng.random_range(self.crop_scale[0]..=self.crop_scale[1]);
            let ratio = rng.random_range(self.crop_ratio[0].ln()..=self.crop_ratio[1].ln()).exp();
            let (tw, th) = ((target * ratio).sqrt().round() as usize, (target / ratio).sqrt().round() as usize);
            if tw >= 1 && th >= 1 && tw <= w && th <= h {
                (ch, cw) = (th, tw);
                top = rng.random_range(0..=h - th);
                left = rng.random_range(0..=w - tw);
                break;
            }
        }
        let flip = self.flip && rng.random_bool(0.5);
        let jitter = |r: &mut rand_chacha::ChaCha8Rng, s: f64| if s > 0.0 { r.random_range(1.0 - s..=1.0 + s) as f32 } else { 1.0 };
        let (b, k, sat) = (jitter(&mut rng, self.brightness), jitter(&mut rng, self.contrast), jitter(&mut rng, self.saturation));
        let n = h * w;
        let mut crop = vec![0f32; cw * ch];
        for p in 0..c {
            let plane = &src[p * n..(p + 1) * n];
            for y in 0..ch {
                for x in 0..cw {
                    let sx = if flip { left + cw - 1 - x } else { left + x };
                    crop[y * cw + x] = plane[(top + y) * w + sx] * map.std[p] + map.mean[p];
                }
            }
            margin_data::preprocess::bilinear_resize(&crop, ch, cw, &mut dst[p * n..(p + 1) * n], h, w);
        }
        // Colour jitter on levels, in torchvision's order: brightness, contrast, saturation.
        let grey = |d: &[f32], i: usize| if c == 3 { 0.299 * d[i] + 0.587 * d[n + i] + 0.114 * d[2 * n + i] } else { d[i] };
        dst.iter_mut().for_each(|v| *v = (*v * b).clamp(0.0, 1.0));
        if k != 1.0 {
            let mean = (0..n).map(|i| grey(dst, i)).sum::<f32>() / n as f32;
            dst.iter_mut().for_each(|v| *v = (mean + k * (*v - mean)).clamp(0.0, 1.0));
        }
        if c == 3 && sat != 1.0 {
            for i in 0..n {
                let g = grey(dst, i);
                for p in 0..3 {
                    dst[p * n + i] = (g + sat * (dst[p * n + i] - g)).clamp(0.0, 1.0);
                }
            }
        }
        for p in 0..c {
            dst[p * n..(p + 1) * n].iter_mut().for_each(|v| *v = (*v - map.mean[p]) / map.std[p]);
        }
    }
}

/// SplitMix64-style mixing of (seed, epoch, sample) into one stream seed.
fn mix(seed: u64, epoch: u64, sample: u64) -> u64 {
    let mut z = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ sample.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture() -> Vec<f32> {
        (0..3 * 8 * 8).map(|i| ((i * 37) % 97) as f32 / 97.0).collect()
    }

    #[test]
    fn deterministic_per_seed_epoch_and_sample() {
        let a = PhotoAugment { brightness: 0.3, contrast: 0.3, saturation: 0.3, ..toml::from_str("").unwrap() };
        a.validate().unwrap();
        let src = picture();
        let run = |seed, epoch, sample| {
            let mut d = vec![0f32; src.len()];
            a.apply(&src, 3, 8, 8, &PixelMap::IDENTITY, seed, epoch, sample, &mut d);
            d
        };
        assert_eq!(run(1, 2, 3), run(1, 2, 3));
        assert_ne!(run(1, 2, 3), run(1, 3, 3));
        assert_ne!(run(1, 2, 3), run(1, 2, 4));
        assert!(run(1, 2, 3).iter().all(|v| (0.0..=1.0).contains(v)));
    }

    /// With nothing random left (full crop, no jitter), the only change is the flip, and
    /// normalised values go through the map and back unchanged.
    #[test]
    fn full_crop_without_jitter_is_the_picture_or_its_mirror() {
        let a = PhotoAugment { crop_scale: [1.0, 1.0], crop_ratio: [1.0, 1.0], flip: true, brightness: 0.0, contrast: 0.0, saturation: 0.0 };
        let map = PixelMap { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };
        let src: Vec<f32> = picture().iter().enumerate().map(|(i, v)| (v - map.mean[i / 64]) / map.std[i / 64]).collect();
        let (mut same, mut flipped) = (0, 0);
        for s in 0..20 {
            let mut d = vec![0f32; src.len()];
            a.apply(&src, 3, 8, 8, &map, 0, 0, s, &mut d);
            let mirror: Vec<f32> = (0..src.len()).map(|i| src[i - i % 8 + 7 - i % 8]).collect();
            let close = |x: &[f32]| d.iter().zip(x).all(|(a, b)| (a - b).abs() < 1e-4);
            if close(&src) {
                same += 1;
            } else if close(&mirror) {
                flipped += 1;
            }
        }
        assert_eq!(same + flipped, 20);
        assert!(same > 0 && flipped > 0);
        assert!(PhotoAugment { crop_scale: [0.0, 1.0], ..a }.validate().is_err());
    }
}
