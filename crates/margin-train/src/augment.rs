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

/// The training set with every class also rotated by 90°, 180° and 270° as three new
/// classes (exact pixel permutations of square `c×h×h` images). A rotated class is named
/// after its source, `NAME@rot90` / `@rot180` / `@rot270`, with label `r·T + label` (`T`
/// the source's class-table length), so the classes keep their order and collide with no
/// real class (names are what the leakage check compares).
pub fn with_rotated_classes(train: &margin_data::Dataset) -> Result<margin_data::Dataset, margin_data::DataError> {
    let [c, h, w] = match train.sample_shape[..] {
        [c, h, w] if h == w => [c, h, w],
        _ => {
            return Err(margin_data::DataError::Split(format!(
                "rotated classes need square images; {} has sample shape {:?}",
                train.name, train.sample_shape
            )));
        }
    };
    let table = train.classes.len() as i64;
    let mut classes = train.classes.clone();
    for r in 1..4 {
        classes.extend(train.classes.iter().map(|n| format!("{n}@rot{}", 90 * r)));
    }
    let d = c * h * w;
    let mut features = train.features.clone();
    let mut labels = train.labels.clone();
    features.reserve(3 * train.features.len());
    labels.reserve(3 * train.labels.len());
    for r in 1..4i64 {
        for (img, &y) in train.features.chunks(d).zip(&train.labels) {
            for ch in 0..c {
                let plane = &img[ch * h * w..(ch + 1) * h * w];
                for yy in 0..h {
                    for xx in 0..w {
                        // Output (yy, xx) of a rotation by r·90° counter-clockwise.
                        let (sy, sx) = match r {
                            1 => (xx, w - 1 - yy),
                            2 => (h - 1 - yy, w - 1 - xx),
                            _ => (h - 1 - xx, yy),
                        };
                        features.push(plane[sy * w + sx]);
                    }
                }
            }
            labels.push(r * table + y);
        }
    }
    margin_data::Dataset::with_names(format!("{} (+ rotated classes)", train.name), features, train.sample_shape.clone(), labels, classes)
}

#[cfg(test)]
mod rotated_class_tests {
    use super::with_rotated_classes;
    use margin_data::Dataset;

    #[test]
    fn rotated_classes_are_new_labels_and_exact_rotations() {
        // One 1×2×2 image per class: [[1, 2], [3, 4]].
        let train = Dataset::new("t", vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], vec![1, 2, 2], vec![7, 3]).unwrap();
        let out = with_rotated_classes(&train).unwrap();
        // Classes "3" and "7" are labels 0 and 1 of a table of 2.
        assert_eq!(out.labels, vec![1, 0, 3, 2, 5, 4, 7, 6]);
        assert_eq!(out.label_names()[..4], ["7", "3", "7@rot90", "3@rot90"]);
        // 90° counter-clockwise of [[1, 2], [3, 4]] is [[2, 4], [1, 3]]; 180° is [[4, 3], [2, 1]].
        assert_eq!(&out.features[8..12], &[2.0, 4.0, 1.0, 3.0]);
        assert_eq!(&out.features[16..20], &[4.0, 3.0, 2.0, 1.0]);
        assert_eq!(&out.features[24..28], &[3.0, 1.0, 4.0, 2.0]);
        let wide = Dataset::new("w", vec![0.0; 6], vec![1, 2, 3], vec![0]).unwrap();
        assert!(with_rotated_classes(&wide).is_err());
    }
}
