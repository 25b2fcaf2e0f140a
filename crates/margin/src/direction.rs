//! Which way is "closer": the one fact every margin comparison depends on.

use burn::tensor::Tensor;

/// Whether a smaller or a larger value of a distance means "closer".
///
/// Euclidean distances are [`Direction::SmallerIsCloser`]; cosine and dot
/// product similarities are [`Direction::LargerIsCloser`]. Losses are written
/// once against [`Direction::violation`], so the same code is right for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A distance: 0 is identical, larger is farther.
    SmallerIsCloser,
    /// A similarity: larger is closer.
    LargerIsCloser,
}

impl Direction {
    /// By how much `near` is *farther* than `far`, in this direction's units.
    ///
    /// `near − far` for distances, `far − near` for similarities (PML's
    /// `BaseDistance.margin(x, y)`). A triplet `(a, p, n)` violates margin `m`
    /// exactly when `violation(d_ap, d_an) + m > 0`.
    pub fn violation(self, near: f64, far: f64) -> f64 {
        match self {
            Direction::SmallerIsCloser => near - far,
            Direction::LargerIsCloser => far - near,
        }
    }

    /// [`Direction::violation`] on tensors of equal shape.
    pub fn violation_tensor<const D: usize>(self, near: Tensor<D>, far: Tensor<D>) -> Tensor<D> {
        match self {
            Direction::SmallerIsCloser => near - far,
            Direction::LargerIsCloser => far - near,
        }
    }

    /// [`Direction::violation`] with a constant on the far side.
    pub fn violation_over<const D: usize>(self, near: Tensor<D>, far: f64) -> Tensor<D> {
        match self {
            Direction::SmallerIsCloser => near.sub_scalar(far),
            Direction::LargerIsCloser => near.neg().add_scalar(far),
        }
    }

    /// [`Direction::violation`] with a constant on the near side.
    pub fn violation_under<const D: usize>(self, near: f64, far: Tensor<D>) -> Tensor<D> {
        match self {
            Direction::SmallerIsCloser => far.neg().add_scalar(near),
            Direction::LargerIsCloser => far.sub_scalar(near),
        }
    }

    /// True when `a` is strictly closer than `b`.
    pub fn is_closer(self, a: f64, b: f64) -> bool {
        match self {
            Direction::SmallerIsCloser => a < b,
            Direction::LargerIsCloser => a > b,
        }
    }

    /// The closer of two values (the swap of Balntas et al. 2016 keeps this one).
    pub fn closest(self, a: f64, b: f64) -> f64 {
        if self.is_closer(b, a) { b } else { a }
    }

    /// Element-wise closer of two tensors.
    pub fn closest_tensor<const D: usize>(self, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
        match self {
            Direction::SmallerIsCloser => a.min_pair(b),
            Direction::LargerIsCloser => a.max_pair(b),
        }
    }
}
