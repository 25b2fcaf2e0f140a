//! P×K batch sampling and image augmentation, driven by an explicit RNG.

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

/// Draws P×K batches: each batch takes `p` distinct classes at random and `k`
/// samples of each (without replacement when the class has ≥ k, else with).
#[derive(Debug, Clone)]
pub struct PkBatcher {
    by_class: Vec<Vec<usize>>,
    p: usize,
    k: usize,
}

impl PkBatcher {
    /// Groups `labels`; `p` is clamped to the number of classes.
    pub fn new(labels: &[i64], p: usize, k: usize) -> Self {
        let by_class = crate::data::indices_by_class(labels).into_values().collect::<Vec<_>>();
        let p = p.min(by_class.len());
        PkBatcher { by_class, p, k }
    }

    /// Batch size `p·k`.
    pub fn batch_size(&self) -> usize {
        self.p * self.k
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.by_class.len()
    }

    /// One batch of sample indices, class-grouped.
    pub fn batch(&self, rng: &mut impl Rng) -> Vec<usize> {
        let classes = rand::seq::index::sample(rng, self.by_class.len(), self.p);
        let mut out = Vec::with_capacity(self.batch_size());
        for c in classes {
            let members = &self.by_class[c];
            if members.len() >= self.k {
                out.extend(members.choose_multiple(rng, self.k).copied());
            } else {
                out.extend((0..self.k).map(|_| *members.choose(rng).expect("non-empty class")));
            }
        }
        out
    }
}

/// Shuffles a slice with `rng` (re-exported convenience).
pub fn shuffle<T>(v: &mut [T], rng: &mut impl Rng) {
    v.shuffle(rng);
}

/// Random rotation (±`max_deg`) and shift (±`max_shift` px) of one `c×h×w` image,
/// bilinear, zero outside. Writes into `dst`.
pub fn augment_image(src: &[f32], c: usize, h: usize, w: usize, max_shift: f64, max_deg: f64, rng: &mut impl Rng, dst: &mut [f32]) {
    let angle = if max_deg > 0.0 { rng.random_range(-max_deg..=max_deg).to_radians() } else { 0.0 };
    let (dx, dy) = if max_shift > 0.0 {
        (rng.random_range(-max_shift..=max_shift), rng.random_range(-max_shift..=max_shift))
    } else {
        (0.0, 0.0)
    };
    let (s, co) = angle.sin_cos();
    let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    for ch in 0..c {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                // Inverse map: output (x, y) samples input at R^-1 (p - centre - shift) + centre.
                let (px, py) = (x as f64 - cx - dx, y as f64 - cy - dy);
                let sx = co * px + s * py + cx;
                let sy = -s * px + co * py + cy;
                let (x0, y0) = (sx.floor(), sy.floor());
                let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
                let get = |yy: f64, xx: f64| -> f32 {
                    if yy < 0.0 || xx < 0.0 || yy >= h as f64 || xx >= w as f64 { 0.0 } else { plane[yy as usize * w + xx as usize] }
                };
                let v = get(y0, x0) * (1.0 - fx) * (1.0 - fy)
                    + get(y0, x0 + 1.0) * fx * (1.0 - fy)
                    + get(y0 + 1.0, x0) * (1.0 - fx) * fy
                    + get(y0 + 1.0, x0 + 1.0) * fx * fy;
                dst[ch * h * w + y * w + x] = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn pk_batches_have_p_classes_of_k() {
        let labels: Vec<i64> = (0..50).map(|i| i / 5).collect();
        let b = PkBatcher::new(&labels, 4, 3);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let batch = b.batch(&mut rng);
        assert_eq!(batch.len(), 12);
        for chunk in batch.chunks(3) {
            assert!(chunk.iter().all(|&i| labels[i] == labels[chunk[0]]));
        }
        let classes: std::collections::BTreeSet<i64> = batch.iter().map(|&i| labels[i]).collect();
        assert_eq!(classes.len(), 4);
    }

    #[test]
    fn identity_augmentation() {
        let src: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut dst = vec![0.0; 16];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        augment_image(&src, 1, 4, 4, 0.0, 0.0, &mut rng, &mut dst);
        assert_eq!(src, dst);
    }
}
