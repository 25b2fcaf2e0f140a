//! # margin-search — nearest-neighbour search over embeddings, without Burn
//!
//! Used by the CLI (`margin index/search/verify/dedup`, a later phase) and the Python
//! bindings. Two backends behind one [`Index`] trait:
//!
//! - [`FlatIndex`]: exact, margin-eval's tiled-GEMM kNN (the workspace's one exact kNN) — for
//!   small galleries, and the ground truth the approximate backend is tested against;
//! - [`HnswIndex`]: approximate, our own HNSW ([`hnsw`]) over f32, f16 or i8 rows
//!   ([`Precision`]).
//!
//! Results are `(slot, distance)` lists per query, nearest first, ties by the smaller slot;
//! a distance is always smaller-is-closer ([`metric`]: Euclidean, its square, `1 − cosine`,
//! `−dot`). Items have string ids ([`Ids`]: parsed from `ids.txt` with line-numbered errors,
//! or row numbers), optional tags for filtered search, and can be added and removed. An index
//! is saved to one versioned, checksummed file written atomically ([`format`]) and opened with
//! a version check and the caller's expectations ([`Expect`]: model fingerprint, dimension,
//! metric), every fault a [`SearchError`] naming the file and the section.
//!
//! ## Why our own HNSW (measured on this machine, 2026-12-01, 2 threads)
//!
//! Decided on N = 100,000 × 128 clustered data (ann_anchor.py's construction, 1,000 queries,
//! M = 16, efConstruction = 100; `benches/results/2026-12-01-ann.md`, which also says how
//! loaded the shared machine was):
//!
//! | | build s | recall@10 @ QPS, ef 64 | ef 128 |
//! |---|---|---|---|
//! | ours | 36.1 | 0.844 @ 4,044 | 0.896 @ 2,068 |
//! | hnsw_rs 0.3.5 (`simdeez_f`) | 107.2 | 0.846 @ 1,067 | 0.913 @ 461 |
//!
//! hnsw_rs built 3× slower and answered 3.4–5× fewer queries at matched recall, and it has no
//! f16/i8 storage. usearch's Rust binding wraps the C++ core whose Python package measured
//! 1.8× faiss's build time and 0.43× its QPS at recall 0.89 (1M), its i8 conversion (×127,
//! clamped) saturates on unnormalised L2 data, and it would bring a C++ toolchain into a
//! pure-Rust crate. Ours runs over this crate's stores (f32, f16, per-row-scaled i8), explicit
//! AVX2 kernels with portable references, and one checksummed file format. At N = 200,000
//! beside faiss (a contended run): i8 storage reached 1.04–1.30× faiss's QPS at matched
//! recall with 1.12× its build time, f32 0.62–0.83× with 1.14× (swinging with the load);
//! the quiet-machine 1M comparison is still to be run.
//!
//! ## Design notes
//!
//! - Slots are never renumbered: removal is a tombstone (walked, never returned), so slot
//!   numbers mean the same in memory, on disk and after reloading ([`catalog`]).
//! - Every random choice is seeded: HNSW levels come from a ChaCha8 stream addressed by
//!   slot; a one-thread build is deterministic for its seed.
//! - Search allocates nothing per query: each rayon task takes a scratch (visited set,
//!   heaps, prepared query) from the index's pool and returns it.
//!
//! ## What else it holds
//!
//! Tags, tombstone removal, the index file (its layout: `docs/formats.md` at the repository root);
//! HNSW storage f32, f16 (converted in registers by F16C) or per-row-scaled i8, with AVX2 kernels;
//! `dedup` (greedy-representative grouping over the kNN, its all-pairs reference, `groups.json`);
//! `metric::distance` (the pair distance `margin verify` reports). Depends on margin-linalg,
//! margin-eval and margin-data, never Burn: `.ci/test` checks it stays Burn-free.
#![warn(missing_docs)]

mod atomic;
pub mod catalog;
mod core;
pub mod dedup;
pub mod error;
mod flat;
mod hugepages;
pub mod format;
pub mod hnsw;
pub mod ids;
mod index;
mod kernels;
pub mod metric;
mod store;
pub mod synth;

use std::path::Path;

pub use crate::core::Spec;
pub use error::{Result, SearchError};
pub use flat::FlatIndex;
pub use hnsw::{HnswIndex, HnswParams};
pub use ids::Ids;
pub use index::{Index, Items, Neighbours, Rows, SearchParams};
pub use metric::{Metric, parse_metric};
pub use store::Precision;

/// What the caller expects of an index file; each `Some` is checked on open.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expect {
    /// The model fingerprint the caller's vectors come from.
    pub fingerprint: Option<String>,
    /// The caller's vector dimension.
    pub dim: Option<usize>,
    /// The metric the caller will search with.
    pub metric: Option<Metric>,
}

/// An index of either kind, as opened from a file.
#[derive(Debug)]
pub enum AnyIndex {
    /// Exact.
    Flat(FlatIndex),
    /// HNSW.
    Hnsw(HnswIndex),
}

impl AnyIndex {
    /// The index as the trait.
    pub fn as_index(&self) -> &dyn Index {
        match self {
            AnyIndex::Flat(f) => f,
            AnyIndex::Hnsw(h) => h,
        }
    }

    /// The index as the trait, mutably.
    pub fn as_index_mut(&mut self) -> &mut dyn Index {
        match self {
            AnyIndex::Flat(f) => f,
            AnyIndex::Hnsw(h) => h,
        }
    }
}

/// Opens an index file written by [`Index::save`], checking the format version, every
/// section's length and checksum and content, then `expect`.
///
/// # Errors
/// [`SearchError::Io`], [`SearchError::Corrupt`] (truncated, corrupted, not an index file),
/// [`SearchError::NewerVersion`], [`SearchError::ModelMismatch`],
/// [`SearchError::DimensionMismatch`], a metric other than expected.
pub fn open(path: &Path, expect: &Expect) -> Result<AnyIndex> {
    format::open(path, expect)
}
