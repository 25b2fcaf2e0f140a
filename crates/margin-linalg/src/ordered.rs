//! Parallel float sums in a fixed order.
//!
//! rayon's `sum`/`reduce` combine partial results in a tree whose shape depends on work
//! stealing, so the same input can give different last bits from run to run. Every
//! parallel float sum in the workspace instead collects one partial per row (or per
//! fixed-size chunk) in index order and adds them sequentially: the result depends on the
//! data alone, never on the number of threads.

use rayon::prelude::*;

/// `Σ f(i)` over `0..n`, evaluated in parallel and added in index order.
pub fn sum_in_order(n: usize, f: impl Fn(usize) -> f64 + Sync + Send) -> f64 {
    (0..n).into_par_iter().map(f).collect::<Vec<f64>>().into_iter().sum()
}

/// The partials of an indexed parallel iterator, added in its order.
pub fn sum_collected<I: IndexedParallelIterator<Item = f64>>(partials: I) -> f64 {
    partials.collect::<Vec<f64>>().into_iter().sum()
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    #[test]
    fn sums_equal_the_sequential_order() {
        let v: Vec<f64> = (0..10_000).map(|i| (i as f64 * 0.731).sin() * 1e-3f64.powi(i % 5)).collect();
        let seq: f64 = v.iter().sum();
        assert_eq!(super::sum_in_order(v.len(), |i| v[i]).to_bits(), seq.to_bits());
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let s = pool.install(|| super::sum_collected(v.par_iter().map(|&x| x)));
            assert_eq!(s.to_bits(), seq.to_bits());
        }
    }
}
