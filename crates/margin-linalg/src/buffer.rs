//! Buffers that start uninitialised.
//!
//! The host passes over B×B matrices and the kernels' activations are memory-bound:
//! zeroing a fresh buffer before writing every entry of it costs a pass of its own.
//!
//! The contract of [`build`] ("`fill` writes every element") is checked in debug builds
//! (the workspace's test profile): the buffer is first filled with a poison bit pattern
//! (a NaN whose payload no arithmetic produces), and after `fill` no element may still
//! hold it. Release builds skip both passes.

use core::mem::MaybeUninit;

/// An element [`build`] can check: it has a bit pattern no computation writes.
pub trait Poison: Copy + 'static {
    /// The poison value (a signalling NaN with an unusual payload for floats).
    const POISON: Self;
    /// Whether `self` has exactly the poison's bits.
    fn is_poison(&self) -> bool;
}

impl Poison for f32 {
    const POISON: Self = f32::from_bits(0xFFA5_A5A5);
    fn is_poison(&self) -> bool {
        self.to_bits() == 0xFFA5_A5A5
    }
}

impl Poison for f64 {
    const POISON: Self = f64::from_bits(0xFFF5_A5A5_A5A5_A5A5);
    fn is_poison(&self) -> bool {
        self.to_bits() == 0xFFF5_A5A5_A5A5_A5A5
    }
}

/// A vector of `len` elements, all written by `fill` (the buffer starts uninitialised).
///
/// # Safety
/// `fill` must write every one of the `len` elements it is given. Debug builds check it
/// (and panic naming the first element left unwritten).
#[track_caller]
pub unsafe fn build<T: Poison>(len: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    if cfg!(debug_assertions) {
        v.spare_capacity_mut()[..len].iter_mut().for_each(|x| {
            x.write(T::POISON);
        });
    }
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: the caller's `fill` wrote all `len` elements (this function's contract;
    // in debug builds every element was also written with the poison first).
    unsafe { v.set_len(len) };
    if cfg!(debug_assertions)
        && let Some(i) = v.iter().position(Poison::is_poison)
    {
        panic!("buffer::build: element {i} of {len} was never written by `fill` (its safety contract)");
    }
    v
}

/// Writes `values` to every element of `out` and returns it, initialised — the safe
/// form of "write a whole slice of a [`build`] buffer, then use it as `&mut [T]`".
///
/// # Panics
/// When `values` yields fewer than `out.len()` elements (checked in every build: it is
/// what makes the returned slice initialised; extra values are not read).
#[track_caller]
#[inline(always)]
pub fn init_from<T>(out: &mut [MaybeUninit<T>], values: impl IntoIterator<Item = T>) -> &mut [T] {
    let mut written = 0;
    for (o, v) in out.iter_mut().zip(values) {
        o.write(v);
        written += 1;
    }
    assert_eq!(written, out.len(), "buffer::init_from: {written} values for {} elements", out.len());
    // SAFETY: the first `written` elements were written just above, and `written` is all
    // of them (asserted); `MaybeUninit<T>` has `T`'s layout.
    unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// Writes `value` to every element of `out` and returns it, initialised.
#[inline(always)]
pub fn init_fill<T: Copy>(out: &mut [MaybeUninit<T>], value: T) -> &mut [T] {
    for o in out.iter_mut() {
        o.write(value);
    }
    // SAFETY: every element was written just above; `MaybeUninit<T>` has `T`'s layout.
    unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn build_returns_what_fill_wrote() {
        // SAFETY: the closure writes all 5 elements.
        let v = unsafe {
            super::build(5, |b| {
                b.iter_mut().enumerate().for_each(|(i, x)| {
                    x.write((i * i) as f64);
                })
            })
        };
        assert_eq!(v, vec![0.0, 1.0, 4.0, 9.0, 16.0]);
    }

    /// The debug check catches a fill that skips an element.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "element 3 of 5 was never written")]
    fn build_refuses_a_partial_fill() {
        // SAFETY: not safe on purpose (element 3 is skipped): the debug check must catch it.
        let _ = unsafe {
            super::build(5, |b: &mut [core::mem::MaybeUninit<f32>]| {
                b.iter_mut().enumerate().filter(|(i, _)| *i != 3).for_each(|(_, x)| {
                    x.write(1.0);
                })
            })
        };
    }

    #[test]
    fn init_from_and_init_fill_initialise_the_whole_slice() {
        let mut b = [core::mem::MaybeUninit::<f64>::uninit(); 4];
        assert_eq!(super::init_from(&mut b, (0..4).map(|i| i as f64 * 0.5)), &[0.0, 0.5, 1.0, 1.5]);
        assert_eq!(super::init_fill(&mut b, 2.0), &[2.0; 4]);
    }

    /// A value source shorter than the slice is refused (the returned slice would hold
    /// uninitialised elements).
    #[test]
    #[should_panic(expected = "buffer::init_from: 3 values for 4 elements")]
    fn init_from_refuses_too_few_values() {
        let mut b = [core::mem::MaybeUninit::<f32>::uninit(); 4];
        let _ = super::init_from(&mut b, [1.0f32, 2.0, 3.0]);
    }
}
