//! The one call convention for the `gemm` crate in the workspace: the 3×3 convolution
//! kernel (margin-models), the fused losses' host path (margin) and the kNN tiles
//! (margin-eval) all go through [`strided_gemm`] or its safe row-major forms ([`gemm_abt`],
//! [`gemm_ab`], [`gemm_atb`]).
//!
//! `T` is [`Real`] (`f32` or `f64`, sealed): both are types gemm has kernels for, so its
//! type dispatch cannot panic. The extents every operand must cover are checked by
//! [`strided_gemm`] in debug builds (the test profile) before gemm reads a pointer.

use crate::Real;

/// One strided operand of [`strided_gemm`]: a pointer, its column stride and row stride
/// (in elements).
#[derive(Clone, Copy, Debug)]
pub struct Strided<P> {
    /// First element.
    pub ptr: P,
    /// Column stride.
    pub cs: isize,
    /// Row stride.
    pub rs: isize,
}

/// `[lowest, highest]` element offsets an `rows × cols` matrix with these strides touches
/// (`None` for an empty matrix).
fn extent(rows: usize, cols: usize, cs: isize, rs: isize) -> Option<(isize, isize)> {
    if rows == 0 || cols == 0 {
        return None;
    }
    let (r, c) = ((rows - 1) as isize, (cols - 1) as isize);
    let corners = [0, c * cs, r * rs, r * rs + c * cs];
    Some((*corners.iter().min().unwrap(), *corners.iter().max().unwrap()))
}

/// Debug check of one operand: it lies inside `[base, base + len)` of its allocation.
#[track_caller]
fn debug_check_within<T>(what: &str, ptr: *const T, rows: usize, cols: usize, cs: isize, rs: isize, base: *const T, len: usize) {
    if let Some((lo, hi)) = extent(rows, cols, cs, rs) {
        // Only the addresses are compared; nothing is dereferenced.
        let offset = (ptr as isize - base as isize) / core::mem::size_of::<T>().max(1) as isize;
        assert!(
            offset + lo >= 0 && ((offset + hi) as usize) < len,
            "strided_gemm: {what} ({rows}×{cols}, strides {cs}/{rs}) reaches elements {}..={} of a buffer of {len}",
            offset + lo,
            offset + hi
        );
    }
}

/// The buffers the operands of [`strided_gemm`] live in, for its debug extent check:
/// `(start, len)` of the allocation each pointer points into.
#[derive(Clone, Copy, Debug)]
pub struct Extents<T> {
    /// `dst`'s allocation.
    pub dst: (*const T, usize),
    /// `lhs`'s allocation.
    pub lhs: (*const T, usize),
    /// `rhs`'s allocation.
    pub rhs: (*const T, usize),
}

impl<T> Extents<T> {
    /// The three allocations as slices.
    pub fn of(dst: &[T], lhs: &[T], rhs: &[T]) -> Self {
        Extents { dst: (dst.as_ptr(), dst.len()), lhs: (lhs.as_ptr(), lhs.len()), rhs: (rhs.as_ptr(), rhs.len()) }
    }
}

/// `dst[m×n] := (read_dst ? dst : 0) + lhs[m×k] · rhs[k×n]`, every operand given by its
/// pointer and strides, on `parallelism`.
///
/// # Safety
/// The pointers and strides must address valid `m×n`, `m×k` and `k×n` matrices inside the
/// allocations named by `extents` (checked by a debug assertion), `dst` valid for writes
/// (and reads when `read_dst`) and aliasing neither operand.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub unsafe fn strided_gemm<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: Strided<*mut T>,
    read_dst: bool,
    lhs: Strided<*const T>,
    rhs: Strided<*const T>,
    extents: Extents<T>,
    parallelism: gemm::Parallelism,
) {
    if cfg!(debug_assertions) {
        debug_check_within("dst", dst.ptr as *const T, m, n, dst.cs, dst.rs, extents.dst.0, extents.dst.1);
        if k > 0 {
            debug_check_within("lhs", lhs.ptr, m, k, lhs.cs, lhs.rs, extents.lhs.0, extents.lhs.1);
            debug_check_within("rhs", rhs.ptr, k, n, rhs.cs, rhs.rs, extents.rhs.0, extents.rhs.1);
        }
    }
    // SAFETY: the caller's contract; `T` is a type gemm supports.
    unsafe {
        gemm::gemm(
            m, n, k, dst.ptr, dst.cs, dst.rs, read_dst, lhs.ptr, lhs.cs, lhs.rs, rhs.ptr, rhs.cs, rhs.rs, T::ONE, T::ONE,
            false, false, false, parallelism,
        )
    }
}

/// `c = a · bᵀ` where `a` is `m × k`, `b` is `n × k` and `c` is `m × n`, all row-major and
/// contiguous. `threads` > 1 lets gemm split the product over the current rayon pool; 1
/// keeps it on the calling thread (the kNN engine parallelises over tiles instead).
///
/// # Panics
/// When a slice is shorter than its shape says (a caller's bug, never user data).
pub fn gemm_abt<T: Real>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T], threads: usize) {
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    row_major(m, n, k, (a, false), (b, true), c, false, parallelism);
}

/// `c := (accumulate ? c : 0) + a · b` where `a` is `m × k`, `b` is `k × n` and `c` is
/// `m × n`, all row-major and contiguous, on the calling thread (callers parallelise over
/// tiles of rows: the NHWC convolutions of `margin-models`).
///
/// # Panics
/// When a slice is shorter than its shape says (a caller's bug, never user data).
pub fn gemm_ab<T: Real>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T], accumulate: bool) {
    row_major(m, n, k, (a, false), (b, false), c, accumulate, gemm::Parallelism::None);
}

/// `c := (accumulate ? c : 0) + aᵀ · b` where `a` is `k × m`, `b` is `k × n` and `c` is
/// `m × n`, all row-major and contiguous, on the calling thread (the weight gradient of the
/// NHWC convolutions: im2col rowsᵀ · output gradient rows).
///
/// # Panics
/// When a slice is shorter than its shape says (a caller's bug, never user data).
pub fn gemm_atb<T: Real>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T], accumulate: bool) {
    row_major(m, n, k, (a, true), (b, false), c, accumulate, gemm::Parallelism::None);
}

/// `c := (accumulate ? c : 0) + op(a) · op(b)` on contiguous row-major slices: `op(a) = aᵀ`
/// for `a` row-major `k × m` when its flag is set, else `a` row-major `m × k`; `op(b) = bᵀ` for
/// `b` row-major `n × k` when its flag is set, else `b` row-major `k × n`. The one body of
/// [`gemm_abt`], [`gemm_ab`] and [`gemm_atb`].
///
/// # Panics
/// When a slice is shorter than its shape says.
#[track_caller]
#[allow(clippy::too_many_arguments)]
fn row_major<T: Real>(m: usize, n: usize, k: usize, (a, a_t): (&[T], bool), (b, b_t): (&[T], bool), c: &mut [T], accumulate: bool, parallelism: gemm::Parallelism) {
    let shape = |t: bool, r: usize, q: usize| if t { format!("{q}×{r}") } else { format!("{r}×{q}") };
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "gemm: operands shorter than {}, {}, {m}×{n}", shape(a_t, m, k), shape(b_t, k, n));
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].iter_mut().for_each(|x| *x = T::ZERO);
        }
        return;
    }
    let a_strides = if a_t { Strided { ptr: a.as_ptr(), cs: m as isize, rs: 1 } } else { Strided { ptr: a.as_ptr(), cs: 1, rs: k as isize } };
    let b_strides = if b_t { Strided { ptr: b.as_ptr(), cs: k as isize, rs: 1 } } else { Strided { ptr: b.as_ptr(), cs: 1, rs: n as isize } };
    let extents = Extents::of(c, a, b);
    // SAFETY: the lengths were checked above; the strides describe `op(a)` (m×k: `a` row-major
    // k×m read column-wise, or row-major m×k), `op(b)` (k×n: `b` row-major n×k read
    // column-wise, or row-major k×n) and row-major `c` (m×n), which does not alias `a` or `b`
    // (a distinct `&mut`).
    unsafe {
        strided_gemm(
            m,
            n,
            k,
            Strided { ptr: c.as_mut_ptr(), cs: 1, rs: n as isize },
            accumulate,
            a_strides,
            b_strides,
            extents,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_abt_matches_naive() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..n * k).map(|i| (i as f64 * 0.11).cos()).collect();
        let mut c = vec![0.0; m * n];
        gemm_abt(m, n, k, &a, &b, &mut c, 1);
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|p| a[i * k + p] * b[j * k + p]).sum();
                assert!((c[i * n + j] - want).abs() < 1e-12);
            }
        }
    }

    /// `gemm_ab` (`a` row-major m×k) and `gemm_atb` (`a` row-major k×m, used transposed)
    /// equal the naive product, with and without accumulating onto `c`.
    #[test]
    fn gemm_ab_and_atb_match_naive_and_accumulate() {
        let (m, n, k) = (4, 6, 5);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let c0: Vec<f64> = (0..m * n).map(|i| i as f64 * 0.5).collect();
        for (transposed, accumulate) in [(false, false), (false, true), (true, false), (true, true)] {
            let mut c = c0.clone();
            let a_at = |i: usize, p: usize| if transposed { a[p * m + i] } else { a[i * k + p] };
            if transposed {
                gemm_atb(m, n, k, &a, &b, &mut c, accumulate);
            } else {
                gemm_ab(m, n, k, &a, &b, &mut c, accumulate);
            }
            for i in 0..m {
                for j in 0..n {
                    let prod: f64 = (0..k).map(|p| a_at(i, p) * b[p * n + j]).sum();
                    let want = if accumulate { c0[i * n + j] + prod } else { prod };
                    assert!((c[i * n + j] - want).abs() < 1e-12, "transposed {transposed} accumulate {accumulate} ({i}, {j})");
                }
            }
        }
    }

    /// The debug extent check refuses an operand that reaches past its buffer.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "strided_gemm: lhs")]
    fn extent_check_catches_an_overrun() {
        let a = vec![1.0f64; 5]; // one short of 2×3
        let b = vec![1.0f64; 6];
        let mut c = vec![0.0f64; 4];
        let extents = Extents::of(&c, &a, &b);
        // SAFETY: not safe on purpose: the debug check must stop it before gemm reads.
        unsafe {
            strided_gemm(
                2,
                2,
                3,
                Strided { ptr: c.as_mut_ptr(), cs: 1, rs: 2 },
                false,
                Strided { ptr: a.as_ptr(), cs: 1, rs: 3 },
                Strided { ptr: b.as_ptr(), cs: 2, rs: 1 },
                extents,
                gemm::Parallelism::None,
            )
        }
    }
}
