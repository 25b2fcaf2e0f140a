//! The one call convention for the `gemm` crate in this crate (the 3×3 convolution
//! kernel and the fused losses' host path): `T` is `f32` or `f64`, both of which gemm
//! supports, so its type dispatch cannot panic.

use super::kfloat::KFloat;

/// `dst[m×n] := (read_dst ? dst : 0) + lhs[m×k] · rhs[k×n]`, every operand given by its pointer,
/// column stride and row stride (in elements), on `parallelism`.
///
/// # Safety
/// The pointers and strides must address valid `m×n`, `m×k` and `k×n` matrices, `dst` valid
/// for writes (and reads when `read_dst`) and aliasing neither operand.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn strided_gemm<T: KFloat>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_cs: isize,
    dst_rs: isize,
    read_dst: bool,
    lhs: *const T,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const T,
    rhs_cs: isize,
    rhs_rs: isize,
    parallelism: gemm::Parallelism,
) {
    // SAFETY: the caller's contract; `T` is a type gemm supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs,
            dst_rs,
            read_dst,
            lhs,
            lhs_cs,
            lhs_rs,
            rhs,
            rhs_cs,
            rhs_rs,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        )
    }
}
