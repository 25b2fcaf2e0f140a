//! Image augmentation (small random shifts and rotations), driven by an explicit RNG.

use rand::Rng;

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
    fn identity_augmentation() {
        let src: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut dst = vec![0.0; 16];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        augment_image(&src, 1, 4, 4, 0.0, 0.0, &mut rng, &mut dst);
        assert_eq!(src, dst);
    }
}
