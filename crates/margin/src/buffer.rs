//! Buffers that start uninitialised.
//!
//! The host passes over B×B matrices and the kernels' activations are memory-bound:
//! zeroing a fresh buffer before writing every entry of it costs a pass of its own.

use core::mem::MaybeUninit;

/// A vector of `len` elements, all written by `fill` (the buffer starts uninitialised).
///
/// # Safety
/// `fill` must write every one of the `len` elements it is given.
pub(crate) unsafe fn build<T>(len: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: the caller's `fill` wrote all `len` elements (this function's contract).
    unsafe { v.set_len(len) };
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn build_returns_what_fill_wrote() {
        // SAFETY: the closure writes all 5 elements.
        let v = unsafe {
            super::build(5, |b| {
                b.iter_mut().enumerate().for_each(|(i, x)| {
                    x.write(i * i);
                })
            })
        };
        assert_eq!(v, vec![0, 1, 4, 9, 16]);
    }
}
