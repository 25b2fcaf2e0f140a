//! Bounded top-k selection with deterministic tie-breaking.
//!
//! Candidates are `(score, index)`; a larger score is better and, among equal
//! scores, the smaller index is better. A [`TopK`] is a *reservoir*: accepted
//! candidates are appended (found 16 at a time with one vector compare and
//! a bit mask) to a buffer of about `2k`; when it fills, a
//! linear-time selection keeps the best `k` and raises the acceptance
//! threshold to the k-th best score. Accepting costs one append, and each
//! selection is paid for by the `k` appends before it, so a candidate costs
//! O(1) amortised (a binary heap would pay O(log k) sift steps for every
//! accepted candidate, which dominated the search for k ≈ 100).

use crate::Real;

/// `true` when `(sa, ia)` ranks strictly before `(sb, ib)`.
#[inline]
pub fn better<T: Real>(sa: T, ia: u32, sb: T, ib: u32) -> bool {
    sa > sb || (sa == sb && ia < ib)
}

/// Width of the chunks [`TopK::offer_chunk`] takes.
pub const CHUNK: usize = 16;

/// The best `k` candidates offered so far.
pub struct TopK<T: Real> {
    k: usize,
    /// `(score.desc_key(), index)`: ascending order = best first.
    buf: Vec<(u64, u32)>,
    len: usize,
    thr: T,
}

impl<T: Real> TopK<T> {
    /// An empty selection of the best `k ≥ 1`.
    pub fn new(k: usize) -> Self {
        let k = k.max(1);
        let cap = (2 * k).max(k + 64) + CHUNK;
        Self {
            k,
            buf: vec![(0, 0); cap],
            len: 0,
            thr: T::NEG_INFINITY,
        }
    }

    /// The score a candidate must exceed to be accepted. Candidates must be
    /// offered in increasing index order: one whose score equals the
    /// threshold then ranks after the k-th best and is rightly rejected.
    #[inline(always)]
    pub fn threshold(&self) -> T {
        self.thr
    }

    /// Offers one candidate.
    #[inline]
    pub fn push(&mut self, s: T, i: u32) {
        if s > self.thr {
            self.buf[self.len] = (s.desc_key(), i);
            self.len += 1;
            self.maybe_shrink();
        }
    }

    /// Offers the candidates `base + j` for the set bits `j` of `mask`
    /// (scores `vals[j]`), which the caller found to beat the threshold.
    /// Costs one append per accepted candidate, not per chunk element.
    #[inline(always)]
    pub fn offer_mask(&mut self, vals: &[T; CHUNK], mut mask: u32, base: u32) {
        let buf = &mut self.buf[self.len..self.len + CHUNK];
        let mut n = 0;
        while mask != 0 {
            let j = mask.trailing_zeros() as usize;
            buf[n] = (vals[j].desc_key(), base + j as u32);
            n += 1;
            mask &= mask - 1;
        }
        self.len += n;
        self.maybe_shrink();
    }

    #[inline]
    fn maybe_shrink(&mut self) {
        if self.len + CHUNK > self.buf.len() {
            self.shrink();
        }
    }

    /// Keeps the best `k` and raises the threshold to the k-th best score.
    fn shrink(&mut self) {
        let k = self.k;
        let live = &mut self.buf[..self.len];
        if live.len() > k {
            live.select_nth_unstable(k - 1);
            self.len = k;
        }
        if self.len == k {
            let worst = self.buf[..k].iter().map(|p| p.0).max().unwrap_or(0);
            self.thr = T::from_desc_key(worst);
        }
    }

    /// Writes the best candidates, best first, into `scores` / `idx`
    /// (length k); returns how many there were.
    pub fn finish(mut self, scores: &mut [T], idx: &mut [u32]) -> usize {
        self.shrink();
        let live = &mut self.buf[..self.len];
        live.sort_unstable();
        for (j, &(s, i)) in live.iter().enumerate() {
            scores[j] = T::from_desc_key(s);
            idx[j] = i;
        }
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_with_index_ties() {
        let vals = [
            1.0f64, 5.0, 3.0, 5.0, 2.0, 5.0, 0.0, 4.0, 5.0, 4.5, 6.0, 0.5,
        ];
        for k in 1..=vals.len() {
            let mut h = TopK::new(k);
            for (i, &v) in vals.iter().enumerate() {
                h.push(v, i as u32);
            }
            let (mut s, mut ix) = (vec![0.0; k], vec![0u32; k]);
            assert_eq!(h.finish(&mut s, &mut ix), k);
            let mut want: Vec<(f64, u32)> = vals.iter().copied().zip(0u32..).collect();
            want.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
            assert_eq!(
                ix,
                want[..k].iter().map(|p| p.1).collect::<Vec<_>>(),
                "k = {k}"
            );
            assert_eq!(s, want[..k].iter().map(|p| p.0).collect::<Vec<_>>());
        }
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::*;

    #[test]
    fn chunks_equal_single_pushes() {
        let vals: Vec<f32> = (0..1000u32)
            .map(|i| ((i * 7919) % 613) as f32 / 7.0)
            .collect();
        for k in [1, 5, 64, 200] {
            let (mut a, mut b) = (TopK::new(k), TopK::new(k));
            for (c, chunk) in vals.chunks_exact(CHUNK).enumerate() {
                let chunk: &[f32; CHUNK] = chunk.try_into().unwrap();
                let thr = a.threshold();
                let mask = (0..CHUNK).fold(0u32, |m, j| m | (u32::from(chunk[j] > thr) << j));
                a.offer_mask(chunk, mask, (c * CHUNK) as u32);
            }
            for (i, &v) in vals.iter().enumerate().take(vals.len() / CHUNK * CHUNK) {
                b.push(v, i as u32);
            }
            let (mut sa, mut ia, mut sb, mut ib) =
                (vec![0.0; k], vec![0; k], vec![0.0; k], vec![0; k]);
            assert_eq!(a.finish(&mut sa, &mut ia), k);
            assert_eq!(b.finish(&mut sb, &mut ib), k);
            assert_eq!((ia, sa), (ib, sb), "k = {k}");
        }
    }
}
