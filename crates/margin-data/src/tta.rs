//! Test-time augmentation of embeddings: a sample's embedding is the mean of the embeddings
//! of several views of it (the sample itself and copies shifted by a few pixels), so that a
//! one-pixel difference in where a character or a face sits moves the embedding less.
//!
//! It is part of how a model embeds, not of one evaluation: `[eval] tta` of the run's
//! configuration is recorded in the model card (`tta`), and every command that embeds with
//! the model (`margin embed`, `search`, `verify`, `dedup`, the Python `Model`) applies the
//! same views, as do the thresholds `margin train` calibrates — a threshold calibrated on
//! averaged embeddings would be wrong for single-view ones and the reverse. The per-epoch
//! validation of the trainer (which checkpoint is best) embeds the single view: it only
//! ranks checkpoints of one run.
//!
//! The views are whole-pixel shifts with the edge replicated (no interpolation, so the
//! identity view is the sample exactly, and a shifted view of an image whose border is
//! background has background where the image moved away). The views' embeddings are
//! averaged after L2-normalising each when the caller normalises (the mean of unit vectors,
//! renormalised: no view outweighs another by its norm), else averaged as they are.

use serde::{Deserialize, Serialize};

use crate::DataError;

/// The largest shift a configuration may ask for, in pixels.
pub const MAX_SHIFT: usize = 8;

/// How the embeddings of a sample's views are formed (`[eval] tta`, the model card's `tta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TestTimeAugment {
    /// One view: the sample as it is.
    #[default]
    None,
    /// Five views: the sample, and copies shifted by `pixels` left, right, up and down.
    Shifts {
        /// The shift, in pixels (1 to [`MAX_SHIFT`], less than half the image's side).
        pixels: usize,
    },
}

impl TestTimeAugment {
    /// `true` for the single view (what cards and configs leave out).
    pub fn is_none(&self) -> bool {
        matches!(self, TestTimeAugment::None)
    }

    /// The views as `(dx, dy)` pixel offsets (positive: right, down), the identity first.
    pub fn offsets(&self) -> Vec<(isize, isize)> {
        match *self {
            TestTimeAugment::None => vec![(0, 0)],
            TestTimeAugment::Shifts { pixels } => {
                let p = pixels as isize;
                vec![(0, 0), (p, 0), (-p, 0), (0, p), (0, -p)]
            }
        }
    }

    /// Checks the views against the model's sample shape (`[channels, height, width]` for
    /// shifts).
    pub fn validate(&self, sample_shape: &[usize]) -> Result<(), DataError> {
        let TestTimeAugment::Shifts { pixels } = *self else { return Ok(()) };
        let bad = |reason: &'static str| Err(DataError::Config { field: "eval.tta", value: format!("shifts of {pixels} px for samples of shape {sample_shape:?}"), reason });
        let [_, h, w] = sample_shape else { return bad("shifted views need image samples ([channels, height, width])") };
        if pixels == 0 || pixels > MAX_SHIFT {
            return bad("pixels must be 1 to 8");
        }
        if 2 * pixels >= *h.min(w) {
            return bad("the shift must be less than half the image's side");
        }
        Ok(())
    }
}

/// Writes `src` (`c × h × w`, row-major) shifted by `(dx, dy)` pixels into `dst`, replicating
/// the edge: `dst[k, y, x] = src[k, clamp(y − dy), clamp(x − dx)]`.
///
/// # Panics
/// If `src` or `dst` is not `c · h · w` long (a caller's bug: the shapes come from the
/// dataset) or `h` or `w` is 0.
pub fn shift_image(src: &[f32], c: usize, h: usize, w: usize, dx: isize, dy: isize, dst: &mut [f32]) {
    assert!(src.len() == c * h * w && dst.len() == src.len() && h > 0 && w > 0, "shift_image: {c}×{h}×{w} against {} / {} values", src.len(), dst.len());
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    for k in 0..c {
        let plane = &src[k * h * w..(k + 1) * h * w];
        let out = &mut dst[k * h * w..(k + 1) * h * w];
        for y in 0..h {
            let sy = clamp(y as isize - dy, h);
            let row = &plane[sy * w..(sy + 1) * w];
            for (x, o) in out[y * w..(y + 1) * w].iter_mut().enumerate() {
                *o = row[clamp(x as isize - dx, w)];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_move_pixels_and_replicate_the_edge() {
        // 1 channel, 2 × 3: [[1 2 3] [4 5 6]].
        let src = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut dst = [0.0; 6];
        shift_image(&src, 1, 2, 3, 1, 0, &mut dst);
        assert_eq!(dst, [1.0, 1.0, 2.0, 4.0, 4.0, 5.0]);
        shift_image(&src, 1, 2, 3, 0, -1, &mut dst);
        assert_eq!(dst, [4.0, 5.0, 6.0, 4.0, 5.0, 6.0]);
        shift_image(&src, 1, 2, 3, 0, 0, &mut dst);
        assert_eq!(dst, src);
    }

    #[test]
    fn views_are_the_identity_and_four_shifts() {
        assert_eq!(TestTimeAugment::None.offsets(), vec![(0, 0)]);
        assert_eq!(TestTimeAugment::Shifts { pixels: 2 }.offsets(), vec![(0, 0), (2, 0), (-2, 0), (0, 2), (0, -2)]);
    }

    #[test]
    fn bad_shifts_are_refused_naming_the_field() {
        let s = |p| TestTimeAugment::Shifts { pixels: p };
        assert!(s(1).validate(&[1, 28, 28]).is_ok());
        assert!(TestTimeAugment::None.validate(&[64]).is_ok());
        for (t, shape) in [(s(0), vec![1, 28, 28]), (s(9), vec![1, 28, 28]), (s(2), vec![1, 4, 4]), (s(1), vec![64])] {
            let e = t.validate(&shape).unwrap_err().to_string();
            assert!(e.contains("eval.tta"), "{e}");
        }
    }

    #[test]
    fn toml_spelling() {
        #[derive(Deserialize)]
        struct T {
            tta: TestTimeAugment,
        }
        let t: T = toml::from_str("tta = { kind = \"shifts\", pixels = 1 }").unwrap();
        assert_eq!(t.tta, TestTimeAugment::Shifts { pixels: 1 });
        assert!(toml::from_str::<T>("tta = { kind = \"shifts\" }").is_err());
        assert!(toml::from_str::<T>("tta = { kind = \"flips\" }").is_err());
    }
}
