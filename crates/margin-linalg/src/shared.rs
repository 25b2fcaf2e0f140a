//! One buffer that parallel jobs write through a shared pointer, each its own part.
//!
//! `par_chunks_mut` covers a buffer split into contiguous chunks. The same set's tile
//! pairs (`W + Wᵀ`) and the symmetric Gram matrix's blocks write strided, interleaved
//! regions of one buffer, so their jobs share a raw pointer instead. [`SharedMut`] is
//! that pointer with its buffer's length and lifetime, and its contract is checked in
//! debug builds (the workspace's test profile):
//!
//! - every access is in bounds (each accessor asserts its whole range);
//! - the jobs' parts are disjoint: every element handed out for writing is recorded,
//!   and an element handed out twice (two jobs writing it: a data race) panics;
//! - a read ([`SharedMut::read`]) is of an element no job writes through this wrapper.
//!
//! Release builds keep only the pointer arithmetic.

use core::marker::PhantomData;
#[cfg(debug_assertions)]
use std::sync::atomic::{AtomicBool, Ordering};

/// A mutable buffer shared by parallel jobs that write disjoint parts of it.
pub struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    /// Debug builds: which elements were handed out for writing.
    #[cfg(debug_assertions)]
    written: Box<[AtomicBool]>,
    _buffer: PhantomData<&'a mut [T]>,
}

// SAFETY: the wrapper is a `&mut [T]` split among threads (as `par_chunks_mut` does),
// with the split checked by the accessors' contracts: sending or sharing it needs what
// sending parts of a `&mut [T]` and reading `T`s on other threads need.
unsafe impl<T: Send> Send for SharedMut<'_, T> {}
// SAFETY: as above (reads of `T` on several threads need `T: Sync`).
unsafe impl<T: Send + Sync> Sync for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    /// The wrapper of `buffer` (borrowed for as long as the wrapper and what it hands out).
    pub fn new(buffer: &'a mut [T]) -> Self {
        SharedMut {
            ptr: buffer.as_mut_ptr(),
            len: buffer.len(),
            #[cfg(debug_assertions)]
            written: (0..buffer.len()).map(|_| AtomicBool::new(false)).collect(),
            _buffer: PhantomData,
        }
    }

    /// Elements of the buffer.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer as `(start, len)`, for [`crate::gemm::Extents`].
    pub fn extent(&self) -> (*const T, usize) {
        (self.ptr as *const T, self.len)
    }

    /// Elements `offset .. offset + len` as a slice of their own, to write.
    ///
    /// # Safety
    /// The range is in bounds, and no other access (through this wrapper or any other
    /// path) touches it while the slice lives. Debug builds check the bounds and that
    /// no element of the range was handed out for writing before.
    #[track_caller]
    pub unsafe fn slice_mut(&self, offset: usize, len: usize) -> &'a mut [T] {
        self.claim_block(offset, 1, len, len);
        // SAFETY: in bounds (the caller's contract, checked in debug builds just above)
        // and not aliased (the caller's contract; in debug builds no element of it was
        // handed out before).
        unsafe { core::slice::from_raw_parts_mut(self.ptr.add(offset), len) }
    }

    /// A pointer to element `offset`, to write the block of `rows` rows of `cols`
    /// elements, `stride` apart, that starts there (a GEMM's destination).
    ///
    /// # Safety
    /// The block is in bounds, and nothing else touches it while the pointer is used;
    /// writes through the pointer stay inside the block. Debug builds check the bounds
    /// and that no element of the block was handed out for writing before.
    #[track_caller]
    pub unsafe fn block_ptr(&self, offset: usize, rows: usize, cols: usize, stride: usize) -> *mut T {
        self.claim_block(offset, rows, cols, stride);
        // SAFETY: `offset` is in bounds (checked in debug builds above when the block is
        // not empty; the caller's contract).
        unsafe { self.ptr.add(offset) }
    }

    /// Element `offset`.
    ///
    /// # Safety
    /// `offset` is in bounds and the element initialised, and no job writes it while
    /// this runs. Debug builds check the bounds and that the element was not handed out
    /// for writing by this wrapper.
    #[track_caller]
    pub unsafe fn read(&self, offset: usize) -> T
    where
        T: Copy,
    {
        debug_assert!(offset < self.len, "SharedMut::read({offset}) past a buffer of {}", self.len);
        #[cfg(debug_assertions)]
        assert!(
            !self.written[offset].load(Ordering::Relaxed),
            "SharedMut::read({offset}): the element is written through this wrapper (a race with its writer)"
        );
        // SAFETY: in bounds and not written concurrently (the caller's contract, checked
        // in debug builds above as far as this wrapper's writes go).
        unsafe { self.ptr.add(offset).read() }
    }

    /// Writes element `offset`.
    ///
    /// # Safety
    /// `offset` is in bounds and no other access touches the element while this runs.
    /// Debug builds check the bounds and that the element was not handed out for
    /// writing before.
    #[track_caller]
    pub unsafe fn write(&self, offset: usize, value: T) {
        self.claim_block(offset, 1, 1, 1);
        // SAFETY: in bounds and not aliased (the caller's contract, checked in debug
        // builds above).
        unsafe { self.ptr.add(offset).write(value) }
    }

    /// Debug builds: asserts the block is in bounds and records its elements as written,
    /// panicking at one recorded before. Nothing in release builds.
    #[track_caller]
    #[inline]
    fn claim_block(&self, offset: usize, rows: usize, cols: usize, stride: usize) {
        if !cfg!(debug_assertions) || rows == 0 || cols == 0 {
            return;
        }
        // One past the block's last element.
        let end = (rows - 1).checked_mul(stride).and_then(|r| r.checked_add(offset)).and_then(|s| s.checked_add(cols));
        assert!(
            cols <= stride || rows == 1,
            "SharedMut: a block of {rows} rows of {cols} elements with stride {stride} overlaps itself"
        );
        assert!(
            end.is_some_and(|e| e <= self.len),
            "SharedMut: {rows} × {cols} elements (stride {stride}) from {offset} reach past a buffer of {}",
            self.len
        );
        #[cfg(debug_assertions)]
        for r in 0..rows {
            let start = offset + r * stride;
            for (i, w) in self.written[start..start + cols].iter().enumerate() {
                assert!(
                    !w.swap(true, Ordering::Relaxed),
                    "SharedMut: element {} of {} handed out for writing twice (the jobs' parts must be disjoint)",
                    start + i,
                    self.len
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SharedMut;
    use rayon::prelude::*;

    /// Disjoint parts written in parallel give the buffer the jobs wrote.
    #[test]
    fn disjoint_parallel_writes() {
        let (n, block) = (10, 4);
        let mut buf = vec![0u32; n * n];
        {
            let shared = SharedMut::new(&mut buf);
            // Column blocks of the matrix: strided, interleaved parts.
            (0..n.div_ceil(block)).into_par_iter().for_each(|b| {
                let (j0, cols) = (b * block, block.min(n - b * block));
                for i in 0..n {
                    // SAFETY: row i, columns j0..j0 + cols belong to block b alone.
                    let row = unsafe { shared.slice_mut(i * n + j0, cols) };
                    row.iter_mut().enumerate().for_each(|(c, v)| *v = (i * n + j0 + c) as u32);
                }
            });
        }
        assert_eq!(buf, (0..(n * n) as u32).collect::<Vec<_>>());
        // Reads of elements the wrapper does not write, writes of the others.
        let shared = SharedMut::new(&mut buf);
        (1..n).into_par_iter().for_each(|i| {
            // SAFETY: row 0 is only read, each row i ≥ 1's first element written by job i alone.
            unsafe { shared.write(i * n, shared.read(i)) };
        });
        drop(shared);
        assert_eq!((0..n).map(|i| buf[i * n]).collect::<Vec<_>>(), (0..n as u32).collect::<Vec<_>>());
    }

    /// A slice past the buffer's end is refused.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "reach past a buffer of 12")]
    fn slice_past_the_end_is_refused() {
        let mut buf = vec![0.0f64; 12];
        let shared = SharedMut::new(&mut buf);
        // SAFETY: not safe on purpose (elements 8..13 of 12): the debug check must catch it.
        let _ = unsafe { shared.slice_mut(8, 5) };
    }

    /// A GEMM block whose last row reaches past the buffer is refused.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "3 × 4 elements (stride 5) from 7 reach past a buffer of 20")]
    fn block_past_the_end_is_refused() {
        let mut buf = vec![0.0f32; 20];
        let shared = SharedMut::new(&mut buf);
        // SAFETY: not safe on purpose (the last row, 17..21, ends past 20): the debug
        // check must catch it.
        let _ = unsafe { shared.block_ptr(7, 3, 4, 5) };
    }

    /// Two jobs handed overlapping parts (a data race) are caught.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "element 5 of 16 handed out for writing twice")]
    fn overlapping_parts_are_refused() {
        let mut buf = vec![0u8; 16];
        let shared = SharedMut::new(&mut buf);
        // SAFETY: not safe on purpose (element 5 is in both parts): the debug check must catch it.
        unsafe {
            let _a = shared.slice_mut(0, 6);
            let _b = shared.slice_mut(5, 3);
        }
    }

    /// A read of an element the wrapper writes (a race with its writer) is caught.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "SharedMut::read(3): the element is written through this wrapper")]
    fn read_of_a_written_element_is_refused() {
        let mut buf = vec![1i32; 8];
        let shared = SharedMut::new(&mut buf);
        // SAFETY: not safe on purpose (element 3 is written, then read): the debug check must catch it.
        unsafe {
            shared.write(3, 7);
            let _ = shared.read(3);
        }
    }

    /// A read past the end is caught.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "SharedMut::read(8) past a buffer of 8")]
    fn read_past_the_end_is_refused() {
        let mut buf = vec![1i32; 8];
        let shared = SharedMut::new(&mut buf);
        // SAFETY: not safe on purpose: the debug check must catch it.
        let _ = unsafe { shared.read(8) };
    }
}
