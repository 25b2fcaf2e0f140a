//! The distance kernels of the graph walk: one query (always `f32`) against one stored row
//! (`f32`, `f16` or `i8`). Each is a lane-accumulator loop LLVM vectorises, compiled a second
//! time with AVX2 + FMA by margin-linalg's [`avx2_dispatch!`](margin_linalg::avx2_dispatch)
//! and chosen at run time; both builds give the same bits (same operations, same order; Rust
//! never contracts `a * b + c` into an FMA). Sixteen lanes are two 8-wide registers, enough to
//! hide the add latency at d = 128. The naive loops in the tests are the slow references.

const LANES: usize = 16;

#[inline(always)]
fn fold(acc: [f32; LANES], tail: f32) -> f32 {
    let mut h = [0f32; 8];
    for l in 0..8 {
        h[l] = acc[l] + acc[l + 8];
    }
    ((h[0] + h[4]) + (h[1] + h[5])) + ((h[2] + h[6]) + (h[3] + h[7])) + tail
}

#[inline(always)]
fn l2sq_impl(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        let d = x - y;
        tail += d * d;
    }
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    fold(acc, tail)
}

#[inline(always)]
fn dot_impl(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    fold(acc, tail)
}

#[inline(always)]
fn dot_i8_impl(a: &[f32], b: &[i8]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut tail = 0f32;
    for (x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * f32::from(y);
    }
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * f32::from(y[l]);
        }
    }
    fold(acc, tail)
}

margin_linalg::avx2_dispatch! {
    /// `Σ (a − b)²`.
    pub fn l2sq(a: &[f32], b: &[f32]) -> f32 = l2sq_impl;
}
margin_linalg::avx2_dispatch! {
    /// `Σ a·b`.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 = dot_impl;
}
margin_linalg::avx2_dispatch! {
    /// `Σ a·b` with `b` an i8 code (the row's scale is applied by the caller).
    pub fn dot_i8(a: &[f32], b: &[i8]) -> f32 = dot_i8_impl;
}

/// `Σ a·b` with `b` stored as f16: converted 64 at a time into a stack buffer by `half`
/// (F16C when the CPU has it), then [`dot`]'s lanes.
pub fn dot_f16(a: &[f32], b: &[half::f16]) -> f32 {
    use half::slice::HalfFloatSliceExt;
    debug_assert_eq!(a.len(), b.len());
    let mut buf = [0f32; 64];
    let mut s = 0f32;
    for (x, y) in a.chunks(64).zip(b.chunks(64)) {
        let t = &mut buf[..y.len()];
        y.convert_to_f32_slice(t);
        s += dot(x, t);
    }
    s
}

/// Hints the CPU to start loading `row` (the next candidate's vector) into cache.
#[inline(always)]
pub fn prefetch<T>(row: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = row.as_ptr() as *const i8;
        let bytes = std::mem::size_of_val(row);
        let mut off = 0;
        while off < bytes.min(256) {
            // SAFETY: a prefetch never faults and reads nothing architecturally; the address
            // lies inside `row` (off < its byte length). SSE is part of the x86-64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
            off += 64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, s: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.37 + s).sin() * 3.0).collect()
    }

    /// Every kernel equals its naive loop (computed in f64) at lengths around the lane width.
    #[test]
    fn kernels_match_naive_loops() {
        for n in [1, 7, 15, 16, 17, 64, 100, 128, 129, 300] {
            let (a, b) = (data(n, 0.0), data(n, 1.3));
            let bi: Vec<i8> = b.iter().map(|v| (v * 40.0) as i8).collect();
            let bh: Vec<half::f16> = b.iter().map(|&v| half::f16::from_f32(v)).collect();
            let l2: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
            let d: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            let di: f64 = a.iter().zip(&bi).map(|(x, &y)| f64::from(*x) * f64::from(y)).sum();
            let dh: f64 = a.iter().zip(&bh).map(|(x, y)| f64::from(*x) * f64::from(y.to_f32())).sum();
            let tol = |v: f64| 1e-5 * (1.0 + v.abs()) * (n as f64).sqrt();
            assert!((f64::from(l2sq(&a, &b)) - l2).abs() < tol(l2), "l2sq n={n}");
            assert!((f64::from(dot(&a, &b)) - d).abs() < tol(d), "dot n={n}");
            assert!((f64::from(dot_i8(&a, &bi)) - di).abs() < tol(di) * 40.0, "dot_i8 n={n}");
            assert!((f64::from(dot_f16(&a, &bh)) - dh).abs() < tol(dh), "dot_f16 n={n}");
            assert_eq!(l2sq(&a, &b).to_bits(), l2sq_impl(&a, &b).to_bits(), "dispatch bits n={n}");
        }
    }
}
