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
//! The choice was made on N = 100,000 × 128 clustered data (ann_anchor.py's construction,
//! 1,000 queries, M = 16, efConstruction = 100) — see `benches/results/2026-12-01-ann.md`
//! for the tables; the 1M comparison with faiss and hnswlib is there too:
//!
//! - **usearch** (Rust binding over its C++ core): not built here. Its Python package, the
//!   same core, measured 1.8× faiss's build time and 0.43× its QPS at recall 0.89 at 1M, and
//!   its i8 conversion (`×127`, clamped) saturates on unnormalised L2 data — it cannot meet
//!   the targets, and would add a C++ toolchain to a pure-Rust crate.
//! - **hnsw_rs** (pure Rust) and **ours** were measured side by side (figures in the results
//!   file). Ours was kept: it was faster at matched recall in that run, and it is the only one
//!   of the two that runs over this crate's stores (f16, non-saturating per-row i8), the
//!   workspace's SIMD dispatch and one file format with named, checksummed sections.
//!
//! ## Design notes
//!
//! - Slots are never renumbered: removal is a tombstone (walked, never returned), so slot
//!   numbers mean the same in memory, on disk and after reloading ([`catalog`]).
//! - Every random choice is seeded: HNSW levels come from a ChaCha8 stream addressed by
//!   slot; a one-thread build is deterministic for its seed.
//! - Search allocates nothing per query: each rayon task takes a scratch (visited set,
//!   heaps, prepared query) from the index's pool and returns it.
#![warn(missing_docs)]

mod atomic;
pub mod catalog;
mod core;
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
