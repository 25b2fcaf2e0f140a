//! An array given to a model, prepared as the model's samples by its card's
//! [`Preprocessing`]: what `margin embed` does to an `.npy` input and `margin.Model.embed`
//! to a numpy array, through this one function ([`prepare_array`]), so the CLI and Python
//! can never prepare the same array differently.
//!
//! Feature rows (`[N, dim]`) and prepared pictures (`[N, c, size, size]`, as the card's
//! [`crate::preprocess::ImagePreprocess`] makes them) are taken as they are; grey images
//! (`N × H × W` or `N × 1 × H × W`, grey levels in `[0, 1]`, or 0–255 for an integer
//! array) are inverted when the card says so and area-resized to the model's input. The
//! card's feature scale is not applied here: the callers divide every feature input
//! (CSV and `.npz` too) by it through [`crate::Dataset::divide_features`].

use std::path::Path;

use thiserror::Error;

use crate::card::Preprocessing;
use crate::{DataError, area_resize, limits, npy, omniglot};

/// Why an array cannot be a model's samples. Every variant names the input and its shape.
#[derive(Debug, Error)]
pub enum ArrayInputError {
    /// Rows of another width (or not a matrix) for a model of feature vectors.
    #[error("{input}: shape {shape:?}, but the model takes rows of {dim} features ([N, {dim}])")]
    Features {
        /// The input (a file, or `x`).
        input: String,
        /// The array's shape.
        shape: Vec<usize>,
        /// The model's feature count.
        dim: usize,
    },
    /// Not prepared pictures of the card's shape, for a model of pictures.
    #[error("{input}: shape {shape:?}, but the model takes prepared pictures of shape [N, {}, {}, {}] (or give the image files)", sample[0], sample[1], sample[2])]
    Pictures {
        /// The input.
        input: String,
        /// The array's shape.
        shape: Vec<usize>,
        /// The model's sample shape `[c, size, size]`.
        sample: [usize; 3],
    },
    /// Not a stack of grey images, for a model of grey images.
    #[error("{input}: shape {shape:?} is not N × H × W or N × 1 × H × W grey images")]
    Grey {
        /// The input.
        input: String,
        /// The array's shape.
        shape: Vec<usize>,
    },
    /// `values` does not hold `prod(shape)` numbers.
    #[error("{input}: {len} values for shape {shape:?}")]
    Length {
        /// The input.
        input: String,
        /// The array's shape.
        shape: Vec<usize>,
        /// How many values were given.
        len: usize,
    },
    /// The file cannot be read, or the images are too large.
    #[error(transparent)]
    Data(#[from] DataError),
}

/// How an array's numbers encode grey levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreyLevels {
    /// Floats in `[0, 1]`.
    Unit,
    /// Integers 0–255 (divided by 255).
    Byte,
}

/// `values` (row-major, of shape `shape`, named `input` in errors) prepared as the samples
/// of a model with preprocessing `prep`: `(samples, N)`, `N = shape[0]`, each sample of the
/// card's sample shape. Feature values are not divided by the card's scale (see the
/// module docs).
pub fn prepare_array(input: &str, values: Vec<f32>, shape: &[usize], levels: GreyLevels, prep: Preprocessing) -> Result<(Vec<f32>, usize), ArrayInputError> {
    let s = shape.to_vec();
    let n = *s.first().unwrap_or(&0);
    if Some(values.len()) != s.iter().try_fold(1usize, |p, &d| p.checked_mul(d)) {
        return Err(ArrayInputError::Length { input: input.to_string(), shape: s, len: values.len() });
    }
    match prep {
        Preprocessing::Features { dim, .. } => {
            if s.len() != 2 || s[1] != dim {
                return Err(ArrayInputError::Features { input: input.to_string(), shape: s, dim });
            }
            Ok((values, n))
        }
        Preprocessing::Image(spec) => {
            if s.len() != 4 || s[1..] != spec.sample_shape()[..] {
                let sample = [spec.channel_count(), spec.size, spec.size];
                return Err(ArrayInputError::Pictures { input: input.to_string(), shape: s, sample });
            }
            Ok((values, n))
        }
        Preprocessing::GreyImage { size, invert } => {
            let (h, w) = match s.as_slice() {
                [_, h, w] | [_, 1, h, w] => (*h, *w),
                _ => return Err(ArrayInputError::Grey { input: input.to_string(), shape: s }),
            };
            limits::check_image_size(w, h, input)?;
            Ok((grey_samples(values, n, h, w, levels, size, invert), n))
        }
    }
}

/// `n` grey `h × w` images as `size × size` model inputs: scaled to `[0, 1]`, inverted when
/// asked (ink = 1 − grey), area-resized.
fn grey_samples(mut values: Vec<f32>, n: usize, h: usize, w: usize, levels: GreyLevels, size: usize, invert: bool) -> Vec<f32> {
    if levels == GreyLevels::Byte {
        values.iter_mut().for_each(|v| *v /= 255.0);
    }
    if invert {
        values.iter_mut().for_each(|v| *v = omniglot::ink(*v));
    }
    let want = size * size;
    let mut out = vec![0f32; n * want];
    for i in 0..n {
        area_resize(&values[i * h * w..(i + 1) * h * w], h, w, &mut out[i * want..(i + 1) * want], size, size);
    }
    out
}

/// An `.npy` file prepared as a model's samples ([`prepare_array`]; integer arrays are
/// grey levels 0–255).
pub fn read_npy_samples(path: &Path, prep: Preprocessing) -> Result<(Vec<f32>, usize), ArrayInputError> {
    let arr = npy::read_npy(path)?;
    let levels = if matches!(arr.data, npy::NpyData::Int(_)) { GreyLevels::Byte } else { GreyLevels::Unit };
    prepare_array(&path.display().to_string(), arr.to_f32(), &arr.header.shape, levels, prep)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEATURES: Preprocessing = Preprocessing::Features { dim: 3, scale: 16.0 };

    #[test]
    fn feature_rows_are_taken_as_they_are_and_other_shapes_are_refused() {
        let v: Vec<f32> = (0..6).map(|i| i as f32).collect();
        let (out, n) = prepare_array("x", v.clone(), &[2, 3], GreyLevels::Unit, FEATURES).unwrap();
        assert_eq!((out, n), (v.clone(), 2), "no scale applied here");
        let e = prepare_array("x.npy", v.clone(), &[3, 2], GreyLevels::Unit, FEATURES).unwrap_err();
        assert!(matches!(e, ArrayInputError::Features { dim: 3, .. }), "{e}");
        assert_eq!(e.to_string(), "x.npy: shape [3, 2], but the model takes rows of 3 features ([N, 3])");
        let e = prepare_array("x", v, &[2, 4], GreyLevels::Unit, FEATURES).unwrap_err();
        assert!(matches!(e, ArrayInputError::Length { len: 6, .. }), "{e}");
    }

    #[test]
    fn grey_images_are_scaled_inverted_and_resized_as_the_card_says() {
        // One 2 × 2 image of byte levels, to a 1 × 1 inverted input: 1 − mean(v / 255).
        let v = vec![0.0, 255.0, 51.0, 102.0];
        let prep = Preprocessing::GreyImage { size: 1, invert: true };
        let (out, n) = prepare_array("x", v.clone(), &[1, 1, 2, 2], GreyLevels::Byte, prep).unwrap();
        assert_eq!(n, 1);
        let mean = (0.0 + 1.0 + 0.2 + 0.4) / 4.0;
        assert!((out[0] - (1.0 - mean)).abs() < 1e-6, "{out:?}");
        let plain = Preprocessing::GreyImage { size: 2, invert: false };
        let (out, _) = prepare_array("x", v.clone(), &[1, 2, 2], GreyLevels::Unit, plain).unwrap();
        assert_eq!(out, v, "same size, not inverted: unchanged");
        let e = prepare_array("x", v, &[1, 4], GreyLevels::Unit, plain).unwrap_err();
        assert!(matches!(e, ArrayInputError::Grey { .. }), "{e}");
    }
}
