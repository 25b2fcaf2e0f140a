//! Exact k-nearest-neighbour search by tiled GEMM.
//!
//! The queries are split into blocks of [`KnnOptions::query_block`] rows, and
//! rayon hands whole blocks to threads. A thread walks the reference in
//! tiles of [`KnnOptions::reference_block`] rows; for each tile it computes
//! the score tile `Q_b · R_tᵀ` with one single-threaded [`gemm`] call, adds
//! the per-reference bias (`−‖r‖²/2` for Euclidean), and streams each row of
//! the tile through a bounded top-k reservoir (`topk::TopK`). Memory is
//! therefore `threads × query_block × reference_block` scores plus the
//! `n × k` result, never `n × m`.
//!
//! Scanning a row tests 16 scores at a time against the reservoir's
//! threshold, so once it holds k candidates the scan costs about one vector
//! compare per 16 scores, next to the `2·d` flops per score the GEMM spends.
//!
//! Exactness: every reference is scored and the reservoir keeps the true top k of
//! those scores. Ties are broken by the smaller reference index. When the
//! reference is the query set, row `i` never returns itself (exclusion by
//! index, so exact duplicates of a point at other indices are kept).

use rayon::prelude::*;

use crate::data::{Embeddings, MAX_ROWS, check_dims};
use crate::distance::{Distance, Prepared, score_to_value};
use crate::error::{EvalError, Result, invalid};
use margin_linalg::Real;
use margin_linalg::gemm::gemm_abt;
use margin_linalg::topk::{CHUNK, TopK};

/// Tile sizes of the search. The defaults (512 × 2048, a 4 MB f32 score
/// tile per thread) were the fastest of 256–1024 × 1024–2048 on a 2-core
/// Zen 4 with d = 128 (see `BENCHMARKS.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnnOptions {
    /// Query rows per block (one block per rayon task).
    pub query_block: usize,
    /// Reference rows per tile.
    pub reference_block: usize,
}

impl Default for KnnOptions {
    fn default() -> Self {
        Self {
            query_block: 512,
            reference_block: 2048,
        }
    }
}

/// The k nearest references of every query, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbors<T: Real> {
    /// Neighbours per query.
    pub k: usize,
    /// Number of queries.
    pub n_queries: usize,
    /// Distance used.
    pub distance: Distance,
    /// `n_queries × k` reference row indices, row-major, best first.
    pub indices: Vec<u32>,
    /// `n_queries × k` values matching `indices`: the distance, or for
    /// [`Distance::Dot`] the inner product (then larger = closer).
    pub values: Vec<T>,
}

impl<T: Real> Neighbors<T> {
    /// Reference indices of query `i`'s neighbours, best first.
    pub fn indices_of(&self, i: usize) -> &[u32] {
        &self.indices[i * self.k..(i + 1) * self.k]
    }
    /// Distances (or dot products) of query `i`'s neighbours.
    pub fn values_of(&self, i: usize) -> &[T] {
        &self.values[i * self.k..(i + 1) * self.k]
    }
}

/// Query and reference prepared for scoring.
pub(crate) struct Space<'a, T: Real> {
    pub q: Prepared<'a, T>,
    /// `None`: the reference is the query set and own rows are excluded.
    pub r: Option<Prepared<'a, T>>,
    pub distance: Distance,
}

impl<'a, T: Real> Space<'a, T> {
    pub fn new(
        query: &Embeddings<'a, T>,
        reference: Option<&Embeddings<'a, T>>,
        distance: Distance,
    ) -> Result<Self> {
        if let Some(r) = reference {
            check_dims(query, r)?;
        }
        for e in std::iter::once(query).chain(reference) {
            if e.rows() > MAX_ROWS {
                return Err(invalid(
                    "input size",
                    format!("{} has more than 2^32-1 rows", e.name()),
                ));
            }
        }
        Ok(Self {
            q: Prepared::new(query, distance),
            r: reference.map(|r| Prepared::new(r, distance)),
            distance,
        })
    }

    pub fn reference(&self) -> &Prepared<'a, T> {
        self.r.as_ref().unwrap_or(&self.q)
    }

    pub fn same_source(&self) -> bool {
        self.r.is_none()
    }

    /// Candidates per query.
    pub fn available(&self) -> usize {
        self.reference().rows - usize::from(self.same_source())
    }

    /// Scores of the `nq` query rows in `qblock` (global indices `qids`)
    /// against reference rows `r0..r0+nr`, into `buf` (`nq × nr`). A query's
    /// own row (same source) gets −∞. With `add_bias = false` the reference
    /// bias is left for the caller to add (the top-k scan fuses it).
    pub fn score_tile(
        &self,
        qblock: &[T],
        qids: &[u32],
        r0: usize,
        nr: usize,
        buf: &mut [T],
        add_bias: bool,
    ) {
        let r = self.reference();
        let d = r.dim;
        let nq = qids.len();
        gemm_abt(nq, nr, d, qblock, &r.data[r0 * d..(r0 + nr) * d], buf, 1);
        if add_bias && !r.bias.is_empty() {
            let bias = &r.bias[r0..r0 + nr];
            for row in buf[..nq * nr].chunks_exact_mut(nr) {
                for (v, &b) in row.iter_mut().zip(bias) {
                    *v += b;
                }
            }
        }
        if self.same_source() {
            for (i, &q) in qids.iter().enumerate() {
                let q = q as usize;
                if q >= r0 && q < r0 + nr {
                    buf[i * nr + (q - r0)] = T::NEG_INFINITY;
                }
            }
        }
    }

    /// Converts the score `s` of query `q` into a reported value.
    pub fn value(&self, q: usize, s: T) -> T {
        let n = if self.q.sq_norm.is_empty() {
            T::ZERO
        } else {
            self.q.sq_norm[q]
        };
        score_to_value(self.distance, n, s)
    }
}

/// The `k` nearest rows of `reference` for every row of `query`.
///
/// With `reference = None` the query set is searched against itself and each
/// row's own index is excluded. Uses the current rayon thread pool.
///
/// # Errors
/// [`EvalError::DimensionMismatch`], [`EvalError::KTooLarge`] (including
/// `k = 0`, reported as an invalid parameter).
pub fn knn<T: Real>(
    query: &Embeddings<T>,
    reference: Option<&Embeddings<T>>,
    k: usize,
    distance: Distance,
) -> Result<Neighbors<T>> {
    knn_with(query, reference, k, distance, &KnnOptions::default())
}

/// [`knn`] with explicit tile sizes.
pub fn knn_with<T: Real>(
    query: &Embeddings<T>,
    reference: Option<&Embeddings<T>>,
    k: usize,
    distance: Distance,
    options: &KnnOptions,
) -> Result<Neighbors<T>> {
    let space = Space::new(query, reference, distance)?;
    if k == 0 {
        return Err(invalid("k", "must be at least 1"));
    }
    if k > space.available() {
        return Err(EvalError::KTooLarge {
            k,
            available: space.available(),
            input: reference.unwrap_or(query).name().to_string(),
        });
    }
    Ok(search(&space, k, options))
}

pub(crate) fn search<T: Real>(space: &Space<T>, k: usize, options: &KnnOptions) -> Neighbors<T> {
    let n = space.q.rows;
    let d = space.q.dim;
    let m = space.reference().rows;
    let qb = options.query_block.max(1);
    let rb = options.reference_block.max(16).min(m.max(16));
    let mut indices = vec![0u32; n * k];
    let mut scores = vec![T::NEG_INFINITY; n * k];
    indices
        .par_chunks_mut(qb * k)
        .zip(scores.par_chunks_mut(qb * k))
        .enumerate()
        .for_each(|(b, (idx_chunk, sc_chunk))| {
            let q0 = b * qb;
            let nq = idx_chunk.len() / k;
            let qids: Vec<u32> = (q0..q0 + nq).map(|q| q as u32).collect();
            let qblock = &space.q.data[q0 * d..(q0 + nq) * d];
            let mut heaps: Vec<TopK<T>> = (0..nq).map(|_| TopK::new(k)).collect();
            let mut buf = vec![T::ZERO; nq * rb];
            let mut r0 = 0;
            while r0 < m {
                let nr = rb.min(m - r0);
                space.score_tile(qblock, &qids, r0, nr, &mut buf, false);
                let bias = if space.reference().bias.is_empty() {
                    None
                } else {
                    Some(&space.reference().bias[r0..r0 + nr])
                };
                scan_tile(&buf[..nq * nr], nr, bias, r0 as u32, &mut heaps);
                r0 += nr;
            }
            for ((h, s), i) in heaps
                .into_iter()
                .zip(sc_chunk.chunks_exact_mut(k))
                .zip(idx_chunk.chunks_exact_mut(k))
            {
                let got = h.finish(s, i);
                debug_assert_eq!(got, k);
            }
        });
    let values = scores
        .par_chunks(k)
        .enumerate()
        .flat_map_iter(|(q, row)| row.iter().map(move |&s| space.value(q, s)))
        .collect();
    Neighbors {
        k,
        n_queries: n,
        distance: space.distance,
        indices,
        values,
    }
}

/// Scans every row of a score tile (`nr` columns) into its query's top-k,
/// with AVX2 code when the CPU has it (the crate itself is compiled for the
/// x86-64 baseline; the GEMM kernels do their own dispatch).
fn scan_tile<T: Real>(tile: &[T], nr: usize, bias: Option<&[T]>, r0: u32, heaps: &mut [TopK<T>]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { scan_tile_avx2(tile, nr, bias, r0, heaps) };
            return;
        }
    }
    scan_tile_body(tile, nr, bias, r0, heaps);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_tile_avx2<T: Real>(
    tile: &[T],
    nr: usize,
    bias: Option<&[T]>,
    r0: u32,
    heaps: &mut [TopK<T>],
) {
    debug_assert!(std::is_x86_feature_detected!("avx2"), "scan_tile_avx2 called on a CPU without AVX2");
    use std::any::TypeId;
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: `T` is `f32` (checked above, in every build), so these are casts of a
        // type to itself: same layout, same lengths.
        let (tile, bias, heaps) = unsafe {
            (
                &*(tile as *const [T] as *const [f32]),
                bias.map(|b| &*(b as *const [T] as *const [f32])),
                &mut *(heaps as *mut [TopK<T>] as *mut [TopK<f32>]),
            )
        };
        // SAFETY: AVX2 is available (this function's precondition, checked in debug builds
        // above).
        unsafe { scan_tile_f32_avx2(tile, nr, bias, r0, heaps) };
    } else {
        scan_tile_body(tile, nr, bias, r0, heaps);
    }
}

/// The AVX2 scan reads and writes a chunk as two 8-lane vectors, and its mask has 16 bits.
#[cfg(target_arch = "x86_64")]
const _: () = assert!(CHUNK == 16, "scan_tile_f32_avx2 handles chunks of 16 f32 (two 8-lane loads)");

/// The f32 scan with explicit AVX2: two 8-lane compares and `movemask`
/// give the 16-bit mask of scores above the threshold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_tile_f32_avx2(
    tile: &[f32],
    nr: usize,
    bias: Option<&[f32]>,
    r0: u32,
    heaps: &mut [TopK<f32>],
) {
    use std::arch::x86_64::*;
    debug_assert!(std::is_x86_feature_detected!("avx2"), "scan_tile_f32_avx2 called on a CPU without AVX2");
    let full = nr / CHUNK * CHUNK;
    for (row, heap) in tile.chunks_exact(nr).zip(heaps.iter_mut()) {
        let mut base = 0;
        while base < full {
            let c: &[f32; CHUNK] = row[base..base + CHUNK].try_into().expect("chunk");
            // SAFETY: `c` (and `b` below) are `[f32; CHUNK]`, CHUNK = 16 (asserted at compile
            // time above the function), read as two unaligned 8-lane loads at 0 and 8;
            // AVX2 is available (this function's precondition).
            let (mut lo, mut hi) = unsafe {
                (
                    _mm256_loadu_ps(c.as_ptr()),
                    _mm256_loadu_ps(c.as_ptr().add(8)),
                )
            };
            if let Some(b) = bias {
                let b: &[f32; CHUNK] = b[base..base + CHUNK].try_into().expect("chunk");
                // SAFETY: as above.
                unsafe {
                    lo = _mm256_add_ps(lo, _mm256_loadu_ps(b.as_ptr()));
                    hi = _mm256_add_ps(hi, _mm256_loadu_ps(b.as_ptr().add(8)));
                }
            }
            let t = _mm256_set1_ps(heap.threshold());
            let mask = (_mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(lo, t)) as u32)
                | ((_mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(hi, t)) as u32) << 8);
            if mask != 0 {
                let mut vals = [0.0f32; CHUNK];
                // SAFETY: `vals` is `[f32; CHUNK]` (16, asserted at compile time), written by two
                // unaligned 8-lane stores at 0 and 8.
                unsafe {
                    _mm256_storeu_ps(vals.as_mut_ptr(), lo);
                    _mm256_storeu_ps(vals.as_mut_ptr().add(8), hi);
                }
                heap.offer_mask(&vals, mask, r0 + base as u32);
            }
            base += CHUNK;
        }
        for j in full..nr {
            heap.push(row[j] + bias.map_or(0.0, |b| b[j]), r0 + j as u32);
        }
    }
}

#[inline(always)]
fn scan_tile_body<T: Real>(
    tile: &[T],
    nr: usize,
    bias: Option<&[T]>,
    r0: u32,
    heaps: &mut [TopK<T>],
) {
    for (row, heap) in tile.chunks_exact(nr).zip(heaps.iter_mut()) {
        match bias {
            Some(b) => scan_row(row, Some(b), r0, heap),
            None => scan_row(row, None, r0, heap),
        }
    }
}

/// Offers every score of `row` plus its `bias` (if any) — reference indices
/// `r0..` — to `heap`, skipping chunks that cannot beat the threshold.
#[inline(always)]
fn scan_row<T: Real>(row: &[T], bias: Option<&[T]>, r0: u32, heap: &mut TopK<T>) {
    let mut vals = [T::ZERO; CHUNK];
    let full = row.len() / CHUNK * CHUNK;
    let mut base = 0;
    while base < full {
        let c: &[T; CHUNK] = row[base..base + CHUNK].try_into().expect("chunk");
        match bias {
            Some(b) => {
                let b: &[T; CHUNK] = b[base..base + CHUNK].try_into().expect("chunk");
                for j in 0..CHUNK {
                    vals[j] = c[j] + b[j];
                }
            }
            None => vals = *c,
        }
        let thr = heap.threshold();
        let mut mask = 0u32;
        for (j, &v) in vals.iter().enumerate() {
            mask |= u32::from(v > thr) << j;
        }
        if mask != 0 {
            heap.offer_mask(&vals, mask, r0 + base as u32);
        }
        base += CHUNK;
    }
    for j in full..row.len() {
        let v = row[j] + bias.map_or(T::ZERO, |b| b[j]);
        heap.push(v, r0 + j as u32);
    }
}
