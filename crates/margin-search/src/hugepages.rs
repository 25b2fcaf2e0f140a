//! Transparent huge pages for the two large, randomly read arrays (the rows and the level-0
//! links). A graph walk touches a new row at every step, so with 4 KiB pages nearly every
//! key costs a TLB miss besides the cache miss (perf on 1M × 128: the first prefetch of a
//! row and the read of a node's link count took ~45 % of the walk). This machine's kernel
//! grants huge pages on request only (`transparent_hugepage/enabled = madvise`), so the
//! index asks for them with `madvise(MADV_HUGEPAGE)`; it is advice, never an error, and
//! `MARGIN_SEARCH_HUGEPAGES=0` turns it off (to measure its effect).

/// Reserves room for `extra` more elements in `v` (amortised growth: exact on an empty
/// vector, so a one-batch build holds no slack) and advises the kernel to back the whole
/// 2 MiB pages of its buffer with huge pages — before the new part is written, so the pages
/// are huge when first touched.
pub(crate) fn reserve<T>(v: &mut Vec<T>, extra: usize) {
    v.reserve(extra);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        if std::env::var_os("MARGIN_SEARCH_HUGEPAGES").is_some_and(|x| x == "0") {
            return;
        }
        let (start, len) = (v.as_ptr() as usize, v.capacity() * std::mem::size_of::<T>());
        let first = start.div_ceil(HUGE) * HUGE;
        let end = (start + len) / HUGE * HUGE;
        if end <= first {
            return;
        }
        debug_assert!(first >= start && end <= start + len, "reserve: [{first:#x}, {end:#x}) outside the buffer");
        // SAFETY: [first, end) lies inside `v`'s allocation of `capacity` elements (checked
        // above in debug builds) and is 2 MiB-aligned; MADV_HUGEPAGE changes how the kernel
        // backs the pages, never their contents, so no reference or value is affected.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}
