//! The matrix the backward GEMMs use: `W' = E + Eᵀ` (same set) or `E` (query against
//! reference) from the planned weights `E = scale · weights`, with its row and column
//! sums, in the backend's float type — one parallel pass over `E`, vectorised and
//! dispatched at run time ([`crate::simd`]).

use core::mem::MaybeUninit;

use rayon::prelude::*;

use margin_linalg::shared::SharedMut;

use crate::flex_element::KFloat;

/// The matrix the backward GEMMs use, from `E = scale · weights = ∂L/∂(GEMM-side
/// matrix)` (`[n, m]`, row-major): `W'_ij = E_ij`, or `E_ij + E_ji` when query and reference are the
/// same set (`D` symmetric); plus its row sums and column sums (f64), summed in a fixed
/// order (the same on every run and thread count). One parallel pass over `E`.
pub(crate) fn backward_weights<T: KFloat>(weights: &[f64], scale: f64, [n, m]: [usize; 2], same_set: bool, kernels: BlockKernels<T>) -> (Vec<T>, Vec<f64>, Vec<f64>) {
    // Every entry of the output is written from the entry of `E` at the same place: `E`
    // must hold all of them (the uninitialised-buffer contracts below rely on it).
    assert_eq!(weights.len(), n * m, "the planned weights are n × m");
    if n == 0 || m == 0 {
        return (Vec::new(), vec![0.0; n], vec![0.0; m]);
    }
    if same_set {
        assert_eq!(n, m, "query and reference are the same set");
        let (out, row_sums) = symmetric_weights(weights, scale, n, kernels.tile_pair);
        return (out, row_sums, Vec::new());
    }
    let mut row_sums = vec![0.0; n];
    let mut col_parts: Vec<Vec<f64>> = Vec::new();
    // SAFETY: every entry is written: the chunks of `BLOCK` rows cover rows `0..n`, and
    // `rows` writes every entry of its rows (see `cross_rows`; `E` is n × m, asserted
    // above); debug builds: `build` checks that every entry was written.
    let out = unsafe {
        margin_linalg::buffer::build(n * m, |out| {
            col_parts = out
                .par_chunks_mut(BLOCK * m)
                .zip(row_sums.par_chunks_mut(BLOCK))
                .zip(weights.par_chunks(BLOCK * m))
                .map(|((out, sums), e)| {
                    let mut cols = vec![0.0; m];
                    (kernels.rows)(out, sums, &mut cols, e, scale);
                    cols
                })
                .collect();
        })
    };
    // Blocks in order: a fixed summation order.
    let col_sums = col_parts.into_iter().fold(vec![0.0; m], |mut acc, c| {
        acc.iter_mut().zip(c).for_each(|(a, b)| *a += b);
        acc
    });
    (out, row_sums, col_sums)
}

/// Rows per parallel block (query against reference), and the side of the same set's tiles.
const BLOCK: usize = 64;

/// Lanes of the row sums' partial sums.
const LANES: usize = 8;

/// The kernels of one element type.
pub(crate) struct BlockKernels<T> {
    /// [`cross_rows`]: `(out, row_sums, col_sums, weights, scale)` for a block of rows.
    rows: fn(&mut [MaybeUninit<T>], &mut [f64], &mut [f64], &[f64], f64),
    /// [`tile_pair`].
    tile_pair: TilePairKernel<T>,
}

margin_linalg::avx2_dispatch! {
    fn rows_f32(out: &mut [MaybeUninit<f32>], sums: &mut [f64], cols: &mut [f64], weights: &[f64], scale: f64) = cross_rows::<f32>
}
margin_linalg::avx2_dispatch! {
    fn rows_f64(out: &mut [MaybeUninit<f64>], sums: &mut [f64], cols: &mut [f64], weights: &[f64], scale: f64) = cross_rows::<f64>
}
margin_linalg::avx2_dispatch! {
    fn tile_pair_f32(job: &TilePair<'_, f32>, ti: usize, tj: usize) -> (TileSums, TileSums) = tile_pair::<f32>
}
margin_linalg::avx2_dispatch! {
    fn tile_pair_f64(job: &TilePair<'_, f64>, ti: usize, tj: usize) -> (TileSums, TileSums) = tile_pair::<f64>
}
pub(crate) const F32_KERNELS: BlockKernels<f32> = BlockKernels { rows: rows_f32, tile_pair: tile_pair_f32 };
pub(crate) const F64_KERNELS: BlockKernels<f64> = BlockKernels { rows: rows_f64, tile_pair: tile_pair_f64 };

/// `out = T(scale · e)` for a block of rows (`m = cols.len()` wide), the rows' sums into
/// `sums` and the block's column sums into `cols`.
#[inline(always)]
fn cross_rows<T: KFloat>(out: &mut [MaybeUninit<T>], sums: &mut [f64], cols: &mut [f64], weights: &[f64], scale: f64) {
    let m = cols.len();
    for ((out_row, e_row), sum) in out.chunks_mut(m).zip(weights.chunks(m)).zip(sums.iter_mut()) {
        let mut lanes = [0.0; LANES];
        let (out_body, out_tail) = out_row.as_chunks_mut::<LANES>();
        let (e_body, e_tail) = e_row.as_chunks::<LANES>();
        let (col_body, col_tail) = cols.as_chunks_mut::<LANES>();
        for ((o, e), c) in out_body.iter_mut().zip(e_body).zip(col_body.iter_mut()) {
            for l in 0..LANES {
                let v = e[l] * scale;
                o[l].write(T::of(v));
                lanes[l] += v;
                c[l] += v;
            }
        }
        let mut total = lanes.iter().sum::<f64>();
        for ((o, &e), c) in out_tail.iter_mut().zip(e_tail).zip(col_tail.iter_mut()) {
            let v = e * scale;
            o.write(T::of(v));
            total += v;
            *c += v;
        }
        *sum = total;
    }
}

/// What every job of [`symmetric_weights`] reads. `out` is the `n × n` output, shared by
/// the jobs; each writes its own two tiles only (bounds and disjointness checked in debug
/// builds by [`SharedMut`]).
pub(crate) struct TilePair<'a, T> {
    out: SharedMut<'a, MaybeUninit<T>>,
    weights: &'a [f64],
    scale: f64,
    n: usize,
}

/// Sums of the rows of one tile of `W'`.
pub(crate) type TileSums = [f64; BLOCK];

/// `W' = E + Eᵀ` (`n × n`) by pairs of `BLOCK × BLOCK` tiles `(I, J)`, `(J, I)` with
/// `I ≤ J`: each job reads both tiles of `E` once (no pass strides through `E` by
/// columns) and writes `S = E_IJ + (E_JI)ᵀ` to `(I, J)` and `Sᵀ` to `(J, I)` — exactly
/// `W'`, as `+` commutes. Row sums are summed per tile, then over tiles in order.
fn symmetric_weights<T: KFloat>(weights: &[f64], scale: f64, n: usize, kernel: TilePairKernel<T>) -> (Vec<T>, Vec<f64>) {
    let nt = n.div_ceil(BLOCK);
    let pairs: Vec<(usize, usize)> = (0..nt).flat_map(|ti| (ti..nt).map(move |tj| (ti, tj))).collect();
    let mut sums: Vec<(TileSums, TileSums)> = Vec::new();
    // SAFETY: every entry is written: the pairs (I, J), I ≤ J, and their mirrors (J, I)
    // cover all tiles, and `tile_pair` writes every entry of both of its tiles (debug
    // builds: `build` checks that no entry is left unwritten, `SharedMut` that no entry
    // is written twice).
    let out = unsafe {
        margin_linalg::buffer::build(n * n, |out| {
            let job = TilePair { out: SharedMut::new(out), weights, scale, n };
            sums = pairs.par_iter().map(|&(ti, tj)| kernel(&job, ti, tj)).collect();
        })
    };
    // tile_sums[I · nt + J]: the row sums of tile (I, J).
    let mut tile_sums = vec![[0.0; BLOCK]; nt * nt];
    for (&(ti, tj), (rows, mirror)) in pairs.iter().zip(sums) {
        tile_sums[ti * nt + tj] = rows;
        if ti != tj {
            tile_sums[tj * nt + ti] = mirror;
        }
    }
    let row_sums = (0..n).map(|i| (0..nt).map(|tj| tile_sums[(i / BLOCK) * nt + tj][i % BLOCK]).sum()).collect();
    (out, row_sums)
}

/// One job of [`symmetric_weights`]: `(job, I, J)` → row sums of tiles `(I, J)` and `(J, I)`.
type TilePairKernel<T> = fn(&TilePair<'_, T>, usize, usize) -> (TileSums, TileSums);

/// Writes tiles `(I, J)` and `(J, I)` of `W' = E + Eᵀ` (see [`symmetric_weights`]);
/// returns their row sums (`(J, I)`'s are `S`'s column sums; zeros past the matrix).
#[inline(always)]
fn tile_pair<T: KFloat>(job: &TilePair<'_, T>, ti: usize, tj: usize) -> (TileSums, TileSums) {
    let TilePair { ref out, weights, scale, n } = *job;
    let (i0, j0) = (ti * BLOCK, tj * BLOCK);
    let (rows, cols) = (BLOCK.min(n - i0), BLOCK.min(n - j0));
    // s[k · cols + c] = E[j0 + c][i0 + k] · scale: tile (J, I) transposed, read row by row
    // (no zeroed scratch: every entry is written here).
    // SAFETY: for each of the `cols` rows of E read, the inner loop writes entries
    // k · cols + c for all k < rows: all rows · cols entries in all (bounds-checked
    // indexing; `build` checks in debug builds that every entry was written).
    let mut s: Vec<f64> = unsafe {
        margin_linalg::buffer::build(rows * cols, |s| {
            for c in 0..cols {
                let e_row = &weights[(j0 + c) * n + i0..][..rows];
                for (k, &v) in e_row.iter().enumerate() {
                    s[k * cols + c].write(v * scale);
                }
            }
        })
    };
    // s[k · cols + c] = E[i0 + k][j0 + c] · scale + E[j0 + c][i0 + k] · scale (`+` commutes:
    // the same bits as W'), written out, row sums on the way.
    let mut row_sums = [0.0; BLOCK];
    let mut col_sums = [0.0; BLOCK];
    for k in 0..rows {
        let e_row = &weights[(i0 + k) * n + j0..][..cols];
        let s_row = &mut s[k * cols..][..cols];
        for (s, &e) in s_row.iter_mut().zip(e_row) {
            *s += e * scale;
        }
        // SAFETY: row i0 + k, columns j0 .. j0 + cols of `out` (n × n) belong to this job's
        // tile (I, J) alone (debug builds check the bounds and that no other job wrote them).
        let out_row = unsafe { out.slice_mut((i0 + k) * n + j0, cols) };
        for (o, &v) in out_row.iter_mut().zip(&*s_row) {
            o.write(T::of(v));
        }
        let mut lanes = [0.0; LANES];
        let (body, tail) = s_row.as_chunks::<LANES>();
        for chunk in body {
            for l in 0..LANES {
                lanes[l] += chunk[l];
            }
        }
        row_sums[k] = lanes.iter().sum::<f64>() + tail.iter().sum::<f64>();
        for (c, &v) in col_sums.iter_mut().zip(&*s_row) {
            *c += v;
        }
    }
    if ti != tj {
        for c in 0..cols {
            // SAFETY: row j0 + c, columns i0 .. i0 + rows of `out` (n × n) belong to this job's
            // tile (J, I) alone (debug builds check the bounds and that no other job wrote them).
            let out_row = unsafe { out.slice_mut((j0 + c) * n + i0, rows) };
            for (k, o) in out_row.iter_mut().enumerate() {
                o.write(T::of(s[k * cols + c]));
            }
        }
    }
    (row_sums, col_sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tile kernel whose jobs write the same tile (a data race) is caught in debug
    /// builds by the shared output's disjointness check.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "handed out for writing twice")]
    fn overlapping_tile_jobs_are_caught() {
        fn broken(job: &TilePair<'_, f64>, _ti: usize, _tj: usize) -> (TileSums, TileSums) {
            tile_pair::<f64>(job, 0, 0)
        }
        let n = 2 * BLOCK;
        let _ = symmetric_weights::<f64>(&vec![1.0; n * n], 1.0, n, broken);
    }

    /// A tile kernel that skips the tiles off the diagonal leaves entries unwritten:
    /// caught in debug builds by `build`'s check.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "was never written by `fill`")]
    fn skipped_tiles_are_caught() {
        fn broken(job: &TilePair<'_, f64>, ti: usize, tj: usize) -> (TileSums, TileSums) {
            if ti == tj { tile_pair::<f64>(job, ti, tj) } else { ([0.0; BLOCK], [0.0; BLOCK]) }
        }
        let n = 2 * BLOCK;
        let _ = symmetric_weights::<f64>(&vec![1.0; n * n], 1.0, n, broken);
    }

    /// The kernels as shipped pass both checks (and give `E + Eᵀ`).
    #[test]
    fn symmetric_weights_are_e_plus_e_transposed() {
        let n = 2 * BLOCK + 5;
        let e: Vec<f64> = (0..n * n).map(|i| ((i as f64 * 0.618034).fract() - 0.5) * 3.0).collect();
        let (w, rows) = symmetric_weights::<f64>(&e, 0.5, n, F64_KERNELS.tile_pair);
        for i in 0..n {
            for j in 0..n {
                assert_eq!(w[i * n + j].to_bits(), (e[i * n + j] * 0.5 + e[j * n + i] * 0.5).to_bits(), "({i}, {j})");
            }
            let want: f64 = (0..n).map(|j| w[i * n + j]).sum();
            assert!((rows[i] - want).abs() <= 1e-12 * (1.0 + want.abs()), "row {i}");
        }
    }
}
