//! The element types the raw-buffer kernels run on (`f32`, `f64`: the ones `gemm::gemm`
//! dispatches on that Burn uses here), shared by every kernel.

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{Bytes, DType, Shape};

/// An element type of the kernels.
pub(crate) trait KFloat:
    Copy
    + Send
    + Sync
    + PartialOrd
    + core::ops::Add<Output = Self>
    + core::ops::Sub<Output = Self>
    + core::ops::Mul<Output = Self>
    + Into<f64>
    + crate::distance::GramElement
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    fn of(v: f64) -> Self;
    fn f(self) -> f64;
    fn is_nan(self) -> bool;
    fn slice(t: &FlexTensor) -> &[Self];
    fn slice_mut(t: &mut FlexTensor) -> &mut [Self];
    /// A contiguous tensor owning `v` (no copy).
    fn tensor(v: Vec<Self>, shape: Shape) -> FlexTensor;
}

macro_rules! kfloat {
    ($t:ty, $dt:expr) => {
        impl KFloat for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
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
kfloat!(f32, DType::F32);
kfloat!(f64, DType::F64);
