//! The floating-point element types (`f32`, `f64`).
//!
//! Everything numeric in the crate is generic over [`Real`], which is sealed
//! and implemented for `f32` and `f64` only: those are the two types the
//! [`gemm`] crate has tuned kernels for. Metrics that aggregate many terms
//! (means, AUC, mutual information) are always accumulated in `f64`.

use std::fmt::{Debug, Display};
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type: `f32` or `f64`.
pub trait Real:
    sealed::Sealed
    + Copy
    + Send
    + Sync
    + 'static
    + PartialOrd
    + Debug
    + Display
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// −∞ (used as "excluded" score).
    const NEG_INFINITY: Self;
    /// Name of the type, for reports.
    const NAME: &'static str;
    /// Conversion from `f64` (rounding for `f32`).
    fn from_f64(x: f64) -> Self;
    /// Widening conversion to `f64`.
    fn to_f64(self) -> f64;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Whether the value is neither NaN nor infinite.
    fn is_finite(self) -> bool;
    /// The larger of two values (NaN-ignoring as `f32::max`).
    fn max(self, other: Self) -> Self;
    /// An integer key that sorts *descending* in the value: `a > b` ⇔
    /// `key(a) < key(b)` for non-NaN values (used by top-k selection).
    fn desc_key(self) -> u64;
    /// Inverse of [`Real::desc_key`].
    fn from_desc_key(key: u64) -> Self;
}

macro_rules! impl_real {
    ($t:ty, $u:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const NAME: &'static str = stringify!($t);
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline(always)]
            fn desc_key(self) -> u64 {
                const SIGN: $u = 1 << (<$u>::BITS - 1);
                // −0 and +0 are equal scores: give them one key.
                let b = if self == 0.0 { 0 } else { self.to_bits() };
                let ascending = if b & SIGN != 0 { !b } else { b | SIGN };
                u64::from(!ascending)
            }
            #[inline]
            fn from_desc_key(key: u64) -> Self {
                const SIGN: $u = 1 << (<$u>::BITS - 1);
                let ascending = !(key as $u);
                let b = if ascending & SIGN != 0 {
                    ascending & !SIGN
                } else {
                    !ascending
                };
                <$t>::from_bits(b)
            }
        }
    };
}
impl_real!(f32, u32);
impl_real!(f64, u64);

/// Dot product of two equal-length slices, in `T`, with 8 independent
/// accumulators so the compiler can vectorise it.
#[inline]
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = T::ZERO;
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    for v in acc {
        s += v;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desc_keys_order_and_invert() {
        let v = [
            f32::NEG_INFINITY,
            -3.5,
            -1e-30,
            0.0,
            1e-30,
            2.0,
            7e30,
            f32::INFINITY,
        ];
        for w in v.windows(2) {
            assert!(w[0].desc_key() >= w[1].desc_key(), "{w:?}");
        }
        for &x in &v {
            assert_eq!(f32::from_desc_key(x.desc_key()).to_bits(), x.to_bits());
            assert_eq!(f64::from_desc_key((x as f64).desc_key()), x as f64);
        }
        assert!(1.0f64.desc_key() < 0.5f64.desc_key());
        assert_eq!((-0.0f32).desc_key(), 0.0f32.desc_key());
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f64> = (0..19).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..19).map(|i| (i as f64 * 0.11).cos()).collect();
        let want: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - want).abs() < 1e-12);
    }
}
