//! glibc allocator tuning for training and benchmark processes.
//!
//! A ConvNet-4 step on 128 Omniglot images allocates and frees hundreds of MB of
//! activations and gradients. glibc returns every block above its mmap threshold
//! to the OS on free, so each step page-faults (and zeroes) all of them again:
//! measured with `examples/convnet_step`, 1.1 s of 6 s CPU time was kernel time
//! (page faults) over 13 steps; with the settings below it is 0.13 s.
//! One arena for all threads: a worker thread's arena trims its heap on free, so the
//! fused losses' B² buffers (allocated on rayon's workers) were re-faulted every step —
//! 10 % of `triplet_all_B2048`'s time in page faults before.
//! `MARGIN_DEFAULT_MALLOC=1` turns this off.
//!
//! This changes a process-wide setting, so the library never calls it on its own:
//! binaries (the `margin` CLI, the benchmarks) call it first thing in `main`.

/// Keeps freed memory in the process heap instead of unmapping it. Call first in `main`.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MARGIN_DEFAULT_MALLOC").is_none() {
        // SAFETY: mallopt only changes glibc allocator parameters; it is called before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
