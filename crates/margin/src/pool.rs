//! Running a fused loss's host work on the thread pool.
//!
//! A fused loss is a dozen short parallel passes (normalise, GEMM, distances, planner,
//! backward matrix, gradient GEMM, ...). Each `par_iter` started from a thread outside
//! rayon's pool hands its work to the pool and sleeps until it is done: at `B = 256`
//! those hand-offs (a futex wake each way) cost as much as the arithmetic. Started
//! from inside the pool, the same passes split with `join` and no hand-off at all.

/// Runs `f` on a thread of rayon's pool (one hand-off in all), or right here when
/// already on one.
pub(crate) fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

