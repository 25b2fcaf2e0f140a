//! The distance kernels of the graph walk: one query (always `f32`) against one stored row
//! (`f32`, `f16` or `i8`). Each has a portable lane-accumulator loop (the reference, and the
//! path on CPUs without AVX2) and an AVX2 body with explicit intrinsics ([`avx2`]) chosen at
//! run time with margin-linalg's detection (`simd::has_avx2_fma`; F16C too for f16 rows,
//! converted in registers); both give the same bits
//! (same operations in the same lane order, no FMA — tested). The naive f64 loops in the
//! tests are the slow references.

const LANES: usize = 16;

/// Two 8-lane accumulators (two ymm registers under AVX2), folded in a fixed order.
#[inline(always)]
fn fold(a0: [f32; 8], a1: [f32; 8], tail: f32) -> f32 {
    let mut s = [0f32; 8];
    for l in 0..8 {
        s[l] = a0[l] + a1[l];
    }
    let mut h = [0f32; 4];
    for l in 0..4 {
        h[l] = s[l] + s[l + 4];
    }
    (h[0] + h[2]) + (h[1] + h[3]) + tail
}

#[inline(always)]
fn l2sq_impl(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (mut a0, mut a1) = ([0f32; 8], [0f32; 8]);
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        let d = x - y;
        tail += d * d;
    }
    for (x, y) in ca.zip(cb) {
        let (x0, x1) = x.split_at(8);
        let (y0, y1) = y.split_at(8);
        for l in 0..8 {
            let d = x0[l] - y0[l];
            a0[l] += d * d;
        }
        for l in 0..8 {
            let d = x1[l] - y1[l];
            a1[l] += d * d;
        }
    }
    fold(a0, a1, tail)
}

#[inline(always)]
fn dot_impl(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (mut a0, mut a1) = ([0f32; 8], [0f32; 8]);
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    for (x, y) in ca.zip(cb) {
        let (x0, x1) = x.split_at(8);
        let (y0, y1) = y.split_at(8);
        for l in 0..8 {
            a0[l] += x0[l] * y0[l];
        }
        for l in 0..8 {
            a1[l] += x1[l] * y1[l];
        }
    }
    fold(a0, a1, tail)
}

#[inline(always)]
fn dot_i8_impl(a: &[f32], b: &[i8]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (mut a0, mut a1) = ([0f32; 8], [0f32; 8]);
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut tail = 0f32;
    for (x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * f32::from(y);
    }
    for (x, y) in ca.zip(cb) {
        let (x0, x1) = x.split_at(8);
        let (y0, y1) = y.split_at(8);
        for l in 0..8 {
            a0[l] += x0[l] * f32::from(y0[l]);
        }
        for l in 0..8 {
            a1[l] += x1[l] * f32::from(y1[l]);
        }
    }
    fold(a0, a1, tail)
}

/// The portable f16 loop: each stored value converted exactly (every f16 is an f32) by
/// `half`'s scalar conversion, then [`dot_impl`]'s lanes — the reference of the F16C body.
#[inline(always)]
fn dot_f16_impl(a: &[f32], b: &[half::f16]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (mut a0, mut a1) = ([0f32; 8], [0f32; 8]);
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y.to_f32();
    }
    for (x, y) in ca.zip(cb) {
        let (x0, x1) = x.split_at(8);
        let (y0, y1) = y.split_at(8);
        for l in 0..8 {
            a0[l] += x0[l] * y0[l].to_f32();
        }
        for l in 0..8 {
            a1[l] += x1[l] * y1[l].to_f32();
        }
    }
    fold(a0, a1, tail)
}

/// The AVX2 bodies: explicit intrinsics doing exactly the portable loops' operations in the
/// same lane order (`sub`, `mul`, `add` — no FMA — into two 8-lane accumulators, folded as
/// [`fold`] does), so both paths give the same bits (tested). Explicit because LLVM's
/// vectoriser turned the portable lane loops into 2- and 4-wide code with shuffles, which
/// took 60 % of a search's time (perf, 2026-12-01) — `avx2_dispatch!` recompiles a loop
/// but cannot make LLVM vectorise it well.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// `fold` of the two accumulators plus `tail`.
    #[target_feature(enable = "avx2,fma")]
    fn fold(a0: __m256, a1: __m256, tail: f32) -> f32 {
        let s = _mm256_add_ps(a0, a1);
        let h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
        // [h0 + h2, h1 + h3]
        let p = _mm_add_ps(h, _mm_movehl_ps(h, h));
        let r = _mm_add_ss(p, _mm_shuffle_ps::<0b01>(p, p));
        _mm_cvtss_f32(r) + tail
    }

    /// # Safety
    /// The CPU has AVX2 and FMA; `a` and `b` have the same length.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2sq(a: &[f32], b: &[f32]) -> f32 {
        debug_assert!(a.len() == b.len() && margin_linalg::simd::has_avx2_fma(), "l2sq: lengths {} / {}, or no AVX2", a.len(), b.len());
        let n = a.len() / 16 * 16;
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i < n {
            // SAFETY: i + 16 <= n <= a.len() == b.len(): four unaligned 8-lane loads in bounds.
            let (x0, x1, y0, y1) = unsafe {
                (_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(a.as_ptr().add(i + 8)), _mm256_loadu_ps(b.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i + 8)))
            };
            let (d0, d1) = (_mm256_sub_ps(x0, y0), _mm256_sub_ps(x1, y1));
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(d0, d0));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(d1, d1));
            i += 16;
        }
        let mut tail = 0f32;
        for (x, y) in a[n..].iter().zip(&b[n..]) {
            let d = x - y;
            tail += d * d;
        }
        fold(a0, a1, tail)
    }

    /// # Safety
    /// As [`l2sq`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        debug_assert!(a.len() == b.len() && margin_linalg::simd::has_avx2_fma(), "dot: lengths {} / {}, or no AVX2", a.len(), b.len());
        let n = a.len() / 16 * 16;
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i < n {
            // SAFETY: as in `l2sq`.
            let (x0, x1, y0, y1) = unsafe {
                (_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(a.as_ptr().add(i + 8)), _mm256_loadu_ps(b.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i + 8)))
            };
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(x0, y0));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(x1, y1));
            i += 16;
        }
        let mut tail = 0f32;
        for (x, y) in a[n..].iter().zip(&b[n..]) {
            tail += x * y;
        }
        fold(a0, a1, tail)
    }

    /// # Safety
    /// As [`l2sq`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_i8(a: &[f32], b: &[i8]) -> f32 {
        debug_assert!(a.len() == b.len() && margin_linalg::simd::has_avx2_fma(), "dot_i8: lengths {} / {}, or no AVX2", a.len(), b.len());
        let n = a.len() / 16 * 16;
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i < n {
            // SAFETY: i + 16 <= n: two 8-lane f32 loads from `a` and one 16-byte load from `b`
            // in bounds.
            let (x0, x1, c) = unsafe { (_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(a.as_ptr().add(i + 8)), _mm_loadu_si128(b.as_ptr().add(i).cast())) };
            let y0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c));
            let y1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(c)));
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(x0, y0));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(x1, y1));
            i += 16;
        }
        let mut tail = 0f32;
        for (x, &y) in a[n..].iter().zip(&b[n..]) {
            tail += x * f32::from(y);
        }
        fold(a0, a1, tail)
    }

    /// `dot` with `b` stored as f16: 16 values a step converted by F16C (`vcvtph2ps`, exact:
    /// every f16 is an f32) straight into registers, then `dot`'s operations.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `a` and `b` have the same length.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_f16(a: &[f32], b: &[half::f16]) -> f32 {
        debug_assert!(a.len() == b.len() && super::has_avx2_fma_f16c(), "dot_f16: lengths {} / {}, or no AVX2/F16C", a.len(), b.len());
        let n = a.len() / 16 * 16;
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i < n {
            // SAFETY: i + 16 <= n: two 8-lane f32 loads from `a` and two 16-byte loads (8 f16
            // each; `half::f16` is a `repr(transparent)` u16) from `b` in bounds.
            let (x0, x1, c0, c1) = unsafe {
                let pb = b.as_ptr().add(i).cast::<__m128i>();
                (_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(a.as_ptr().add(i + 8)), _mm_loadu_si128(pb), _mm_loadu_si128(pb.add(1)))
            };
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(x0, _mm256_cvtph_ps(c0)));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(x1, _mm256_cvtph_ps(c1)));
            i += 16;
        }
        let mut tail = 0f32;
        for (x, y) in a[n..].iter().zip(&b[n..]) {
            tail += x * y.to_f32();
        }
        fold(a0, a1, tail)
    }
}

/// Whether the CPU converts f16 in hardware (F16C) besides AVX2 + FMA (std caches the
/// detection).
#[inline]
fn has_avx2_fma_f16c() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2_fma() && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

use margin_linalg::simd::has_avx2_fma;

/// `Σ (a − b)²`.
#[inline]
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if a.len() == b.len() && has_avx2_fma() {
        // SAFETY: AVX2 + FMA checked just above, lengths equal.
        return unsafe { avx2::l2sq(a, b) };
    }
    l2sq_impl(a, b)
}

/// `Σ a·b`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if a.len() == b.len() && has_avx2_fma() {
        // SAFETY: as in `l2sq`.
        return unsafe { avx2::dot(a, b) };
    }
    dot_impl(a, b)
}

/// `Σ a·b` with `b` an i8 code (the row's scale is applied by the caller).
#[inline]
pub fn dot_i8(a: &[f32], b: &[i8]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if a.len() == b.len() && has_avx2_fma() {
        // SAFETY: as in `l2sq`.
        return unsafe { avx2::dot_i8(a, b) };
    }
    dot_i8_impl(a, b)
}

/// `Σ a·b` with `b` stored as f16: F16C converts it in registers when the CPU has it
/// ([`avx2::dot_f16`]), the portable loop otherwise; the same bits either way (tested).
/// (Converting 64 values at a time into a stack buffer with `half`'s slice conversion — an
/// indirect call per 8 values — left f16 builds 2.3× slower than f32 at 1M × 128.)
#[inline]
pub fn dot_f16(a: &[f32], b: &[half::f16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if a.len() == b.len() && has_avx2_fma_f16c() {
        // SAFETY: AVX2, FMA and F16C checked just above, lengths equal.
        return unsafe { avx2::dot_f16(a, b) };
    }
    dot_f16_impl(a, b)
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
        while off < bytes.min(512) {
            debug_assert!(off < bytes, "prefetch: offset {off} outside a row of {bytes} bytes");
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
            assert_eq!(l2sq(&a, &b).to_bits(), l2sq_impl(&a, &b).to_bits(), "l2sq: AVX2 and portable bits, n={n}");
            assert_eq!(dot(&a, &b).to_bits(), dot_impl(&a, &b).to_bits(), "dot: AVX2 and portable bits, n={n}");
            assert_eq!(dot_i8(&a, &bi).to_bits(), dot_i8_impl(&a, &bi).to_bits(), "dot_i8: AVX2 and portable bits, n={n}");
            assert_eq!(dot_f16(&a, &bh).to_bits(), dot_f16_impl(&a, &bh).to_bits(), "dot_f16: F16C and portable bits, n={n}");
        }
    }

    /// The F16C path gives the portable loop's bits, and the portable loop those of `dot` on
    /// the exactly converted row, over seeded random vectors of odd and even lengths holding
    /// normal, subnormal, zero and extreme f16 values.
    #[test]
    fn f16_kernel_equals_its_reference_bit_for_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
        let specials = [0.0, -0.0, 6.0e-8, -3.0e-6, 6.1e-5, 65504.0, -65504.0, 1.0];
        for round in 0..400 {
            let n = rng.random_range(1..=300);
            let a: Vec<f32> = (0..n).map(|_| rng.random_range(-4.0f32..4.0)).collect();
            let bh: Vec<half::f16> = (0..n)
                .map(|_| {
                    let v = if rng.random_bool(0.1) { specials[rng.random_range(0..specials.len())] } else { rng.random_range(-4.0f32..4.0) };
                    half::f16::from_f32(v)
                })
                .collect();
            let b: Vec<f32> = bh.iter().map(|v| v.to_f32()).collect();
            let r = dot_f16_impl(&a, &bh);
            assert_eq!(dot_f16(&a, &bh).to_bits(), r.to_bits(), "round {round}, n={n}: fast path vs portable");
            assert_eq!(dot_impl(&a, &b).to_bits(), r.to_bits(), "round {round}, n={n}: portable f16 vs f32 dot");
        }
    }
}
