//! Distances between embeddings and how each is reduced to one inner product.
//!
//! All four distances rank references by a *score* `s` that is an affine
//! function of the inner product, so the expensive part of every search is
//! the same GEMM `Q · Rᵀ`:
//!
//! | distance | score maximised | value reported |
//! |---|---|---|
//! | [`Distance::Euclidean`] | `q·r − ‖r‖²/2` | `sqrt(max(0, ‖q‖² − 2s))` |
//! | [`Distance::SquaredEuclidean`] | `q·r − ‖r‖²/2` | `max(0, ‖q‖² − 2s)` |
//! | [`Distance::Cosine`] | `q̂·r̂` (unit rows) | `1 − s` |
//! | [`Distance::Dot`] | `q·r` | `s` (a similarity: larger is closer) |
//!
//! For cosine, an all-zero row has no direction; it is left at zero, so its
//! cosine similarity with anything is 0 (distance 1).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::data::Embeddings;
use crate::error::{EvalError, invalid};
use margin_linalg::{Real, dot};

/// How closeness between two embeddings is measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distance {
    /// `‖q − r‖₂`.
    #[default]
    Euclidean,
    /// `‖q − r‖₂²` (same ranking as Euclidean).
    SquaredEuclidean,
    /// `1 − cos(q, r)`.
    Cosine,
    /// The inner product `q·r`, a similarity: larger means closer.
    Dot,
}

impl Distance {
    /// All distances, for iteration in tests and help texts.
    pub const ALL: [Distance; 4] = [
        Distance::Euclidean,
        Distance::SquaredEuclidean,
        Distance::Cosine,
        Distance::Dot,
    ];

    /// The command-line / JSON name (`euclidean`, `squared-euclidean`, `cosine`, `dot`).
    pub fn name(self) -> &'static str {
        match self {
            Distance::Euclidean => "euclidean",
            Distance::SquaredEuclidean => "squared-euclidean",
            Distance::Cosine => "cosine",
            Distance::Dot => "dot",
        }
    }

    /// `true` when a larger reported value means closer (only [`Distance::Dot`]).
    pub fn higher_is_closer(self) -> bool {
        matches!(self, Distance::Dot)
    }

    /// The reported value (see the module table) between two rows, computed
    /// directly in `f64`. Used for pair scores and as the brute-force reference.
    pub fn between<T: Real>(self, a: &[T], b: &[T]) -> f64 {
        let (mut ab, mut aa, mut bb, mut sq) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (x.to_f64(), y.to_f64());
            ab += x * y;
            aa += x * x;
            bb += y * y;
            sq += (x - y) * (x - y);
        }
        match self {
            Distance::Euclidean => sq.sqrt(),
            Distance::SquaredEuclidean => sq,
            Distance::Cosine => {
                let den = aa.sqrt() * bb.sqrt();
                if den == 0.0 { 1.0 } else { 1.0 - ab / den }
            }
            Distance::Dot => ab,
        }
    }
}

impl fmt::Display for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Distance {
    type Err = EvalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "euclidean" | "l2" => Ok(Distance::Euclidean),
            "squared-euclidean" | "sqeuclidean" | "l2sq" => Ok(Distance::SquaredEuclidean),
            "cosine" | "cos" => Ok(Distance::Cosine),
            "dot" | "inner-product" | "ip" => Ok(Distance::Dot),
            _ => Err(invalid(
                "distance",
                format!("{s:?} (expected euclidean, squared-euclidean, cosine or dot)"),
            )),
        }
    }
}

/// Rows prepared for scoring under one distance: unit rows for cosine, plus
/// `−‖r‖²/2` (the score bias of a reference row) and `‖q‖²` for Euclidean.
#[derive(Debug)]
pub(crate) struct Prepared<'a, T: Real> {
    pub data: Cow<'a, [T]>,
    pub rows: usize,
    pub dim: usize,
    /// `−‖x‖²/2` per row (Euclidean distances only, else empty).
    pub bias: Vec<T>,
    /// `‖x‖²` per row (Euclidean distances only, else empty).
    pub sq_norm: Vec<T>,
}

impl<'a, T: Real> Prepared<'a, T> {
    pub fn new(e: &Embeddings<'a, T>, distance: Distance) -> Self {
        let (rows, dim) = (e.rows(), e.dim());
        match distance {
            Distance::Euclidean | Distance::SquaredEuclidean => {
                let sq_norm: Vec<T> = (0..rows).map(|i| dot(e.row(i), e.row(i))).collect();
                let half = T::from_f64(-0.5);
                let bias = sq_norm.iter().map(|&n| n * half).collect();
                Self {
                    data: Cow::Borrowed(e.data()),
                    rows,
                    dim,
                    bias,
                    sq_norm,
                }
            }
            Distance::Cosine => {
                let mut data = e.data().to_vec();
                for row in data.chunks_exact_mut(dim) {
                    let n = dot(row, row).to_f64().sqrt();
                    if n > 0.0 {
                        let inv = T::from_f64(1.0 / n);
                        row.iter_mut().for_each(|v| *v = *v * inv);
                    }
                }
                Self {
                    data: Cow::Owned(data),
                    rows,
                    dim,
                    bias: Vec::new(),
                    sq_norm: Vec::new(),
                }
            }
            Distance::Dot => Self {
                data: Cow::Borrowed(e.data()),
                rows,
                dim,
                bias: Vec::new(),
                sq_norm: Vec::new(),
            },
        }
    }

    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Converts a score (larger = closer) of query row `q` into the reported value.
#[inline]
pub(crate) fn score_to_value<T: Real>(distance: Distance, query_sq_norm: T, s: T) -> T {
    match distance {
        Distance::Dot => s,
        Distance::Cosine => T::ONE - s,
        Distance::SquaredEuclidean | Distance::Euclidean => {
            let two = T::ONE + T::ONE;
            let sq = (query_sq_norm - two * s).max(T::ZERO);
            if distance == Distance::Euclidean {
                sq.sqrt()
            } else {
                sq
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_between() {
        assert_eq!(
            "squared_euclidean".parse::<Distance>().unwrap(),
            Distance::SquaredEuclidean
        );
        assert!("manhattan".parse::<Distance>().is_err());
        let (a, b) = ([3.0f64, 0.0], [0.0f64, 4.0]);
        assert_eq!(Distance::Euclidean.between(&a, &b), 5.0);
        assert_eq!(Distance::SquaredEuclidean.between(&a, &b), 25.0);
        assert_eq!(Distance::Cosine.between(&a, &b), 1.0);
        assert_eq!(Distance::Dot.between(&a, &a), 9.0);
        assert_eq!(Distance::Cosine.between(&[0.0f64, 0.0], &a), 1.0);
        for d in Distance::ALL {
            assert_eq!(d.name().parse::<Distance>().unwrap(), d);
        }
    }
}
