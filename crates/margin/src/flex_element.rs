//! The element types the raw-buffer code on Burn's `flex` backend runs on (`f32`, `f64`):
//! the fused losses' host path here and the CPU kernels of `margin-models`, one trait.

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{Bytes, DType, Shape};
use margin_linalg::Real;
use margin_linalg::buffer::Poison;

/// An element type of the host kernels: a [`Real`] that can be viewed in (and wrapped
/// as) a contiguous `flex` tensor.
pub trait FlexElement: Real + Poison + Into<f64> {
    /// `v` rounded to this type.
    fn of(v: f64) -> Self;
    /// Widened to `f64`.
    fn f(self) -> f64;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool;
    /// The elements of a contiguous tensor of this dtype.
    ///
    /// # Panics
    /// When the tensor is not contiguous or has another dtype (the caller's bug).
    fn slice(t: &FlexTensor) -> &[Self];
    /// The elements of a tensor of this dtype, mutably.
    fn slice_mut(t: &mut FlexTensor) -> &mut [Self];
    /// A contiguous tensor owning `v` (no copy).
    fn tensor(v: Vec<Self>, shape: Shape) -> FlexTensor;
}

/// What the losses' host path needs besides [`FlexElement`].
pub(crate) trait KFloat: FlexElement + crate::distance::GramElement {}
impl<T: FlexElement + crate::distance::GramElement> KFloat for T {}

macro_rules! flex_element {
    ($t:ty, $dt:expr) => {
        impl FlexElement for $t {
            #[inline(always)]
            fn of(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn f(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn slice(t: &FlexTensor) -> &[Self] {
                t.as_slice::<$t>().expect("contiguous tensor")
            }
            fn slice_mut(t: &mut FlexTensor) -> &mut [Self] {
                t.storage_mut::<$t>()
            }
            fn tensor(v: Vec<Self>, shape: Shape) -> FlexTensor {
                FlexTensor::new(Bytes::from_elems(v), Layout::contiguous(shape), $dt)
            }
        }
    };
}
flex_element!(f32, DType::F32);
flex_element!(f64, DType::F64);
