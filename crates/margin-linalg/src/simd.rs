//! Run-time CPU-feature dispatch for the host passes over `B × B` matrices.
//!
//! The crate builds for baseline x86-64 (SSE2: two `f64` lanes) so that one binary
//! runs on any x86-64 machine. The hot host loops (the batch-all planner's sweeps,
//! the backward matrix, the √ chain rule) are written so that LLVM vectorises them —
//! lane accumulators, selects instead of branches — and [`avx2_dispatch!`] compiles
//! each a second time with AVX2 + FMA, chosen at run time.
//!
//! Both versions compute bit-identical results: the operations and their order are
//! the same, and Rust never contracts `a * b + c` into an FMA on its own.

/// Whether the running CPU has AVX2 and FMA (std caches the detection).
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `avx2_dispatch! { vis fn name(args) -> ret = implementation }` defines `name`, which
/// calls `implementation` (an `#[inline(always)]` function with the same arguments)
/// compiled with AVX2 + FMA when the CPU has them, and as built otherwise.
#[macro_export]
macro_rules! avx2_dispatch {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $imp:path $(;)?) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn with_avx2($($arg: $ty),*) $(-> $ret)? {
                    $imp($($arg),*)
                }
                if $crate::simd::has_avx2_fma() {
                    // SAFETY: the running CPU has AVX2 and FMA (checked just above).
                    return unsafe { with_avx2($($arg),*) };
                }
            }
            $imp($($arg),*)
        }
    };
}

#[cfg(test)]
mod tests {
    #[inline(always)]
    fn dot_impl(x: &[f64], y: &[f64]) -> f64 {
        let mut lanes = [0.0; 8];
        for (cx, cy) in x.chunks_exact(8).zip(y.chunks_exact(8)) {
            for l in 0..8 {
                lanes[l] += cx[l] * cy[l];
            }
        }
        lanes.iter().sum()
    }

    avx2_dispatch! {
        fn dot(x: &[f64], y: &[f64]) -> f64 = dot_impl;
    }

    /// Regression guard for the dispatch's promise: both builds give the same bits.
    #[test]
    fn dispatched_and_baseline_builds_agree_bit_for_bit() {
        let x: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37).sin()).collect();
        let y: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.11).cos() / 3.0).collect();
        assert_eq!(dot(&x, &y).to_bits(), dot_impl(&x, &y).to_bits());
    }
}
