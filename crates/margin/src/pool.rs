//! Running a fused loss's host work on the thread pool.
//!
//! A fused loss is a dozen short parallel passes (normalise, GEMM, distances, planner,
//! backward matrix, gradient GEMM, ...). Each `par_iter` started from a thread outside
//! rayon's pool hands its work to the pool and sleeps until it is done: at `B = 256`
//! those hand-offs (a futex wake each way) cost as much as the arithmetic. Started
//! from inside the pool, the same passes split with `join` and no hand-off at all.

use burn::tensor::Tensor;

use crate::loss::host_path_serves;

/// Runs `f` on a thread of rayon's pool (one hand-off in all) when the fused work will
/// run on the host — `query` (and `reference`) on the CPU backend — or right here when
/// already on a pool thread or when the work runs on another device (whose streams may
/// be per thread: moving it would only add syncs).
pub(crate) fn on_pool<R: Send>(query: &Tensor<2>, reference: Option<&Tensor<2>>, f: impl FnOnce() -> R + Send) -> R {
    let host = host_path_serves(query) && reference.is_none_or(host_path_serves);
    if !host || rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}
