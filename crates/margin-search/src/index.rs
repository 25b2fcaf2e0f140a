//! The [`Index`] trait both backends implement, and the types of its calls.
//!
//! The trait is what the CLI (`margin index/search/verify/dedup`) and the Python bindings
//! program against: rows in, ranked `(slot, distance)` lists out, ids and tags by name.
//! Everything is validated at this boundary (shapes, finite values, ids, k), so a command
//! is a thin translation of flags into these calls.

use std::path::Path;

use crate::error::{Result, SearchError};
use crate::ids::Ids;
use crate::metric::Metric;
use crate::store::{Precision, check_rows};

/// A borrowed row-major matrix with the name it goes by in errors.
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    /// Name of the input (`"--queries Q.npy"`).
    pub input: &'a str,
    /// `n × dim` values, row-major.
    pub data: &'a [f32],
    /// Columns.
    pub dim: usize,
}

impl<'a> Rows<'a> {
    /// `data` as rows of `dim`.
    pub fn new(input: &'a str, data: &'a [f32], dim: usize) -> Self {
        Self { input, data, dim }
    }

    /// Validates the rows against an index of dimension `dim` (shape, dimension, the one
    /// rule for usable rows); returns the row count.
    ///
    /// # Errors
    /// [`SearchError::DimensionMismatch`], [`SearchError::Shape`], [`SearchError::Empty`],
    /// [`SearchError::NonFinite`], [`SearchError::Overflow`], each naming the input.
    pub fn check(&self, dim: usize) -> Result<usize> {
        if self.dim != dim {
            return Err(SearchError::DimensionMismatch { input: self.input.into(), expected: dim, found: self.dim });
        }
        check_rows(self.input, self.data, self.dim)
    }
}

/// A batch of items to add.
#[derive(Clone, Debug)]
pub struct Items<'a> {
    /// The vectors.
    pub rows: Rows<'a>,
    /// Their ids (`None`: slot numbers as decimal strings).
    pub ids: Option<Ids>,
    /// Their tags, one per row (required when the index has tags, refused otherwise).
    pub tags: Option<&'a [String]>,
}

impl<'a> Items<'a> {
    /// Rows with row-number ids and no tags.
    pub fn rows(rows: Rows<'a>) -> Self {
        Self { rows, ids: None, tags: None }
    }
}

/// How to search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchParams {
    /// HNSW beam width (at least k is used); ignored by the exact index.
    pub ef: usize,
    /// Return only items carrying one of these tags.
    pub tags: Option<Vec<String>>,
}

impl Default for SearchParams {
    fn default() -> Self {
        Self { ef: 64, tags: None }
    }
}

/// The neighbours of each query, nearest first (ties by the smaller slot).
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbours {
    /// Requested neighbours per query.
    pub k: usize,
    lens: Vec<u32>,
    slots: Vec<u32>,
    distances: Vec<f32>,
}

impl Neighbours {
    pub(crate) fn new(k: usize, n: usize) -> Self {
        Self { k, lens: vec![0; n], slots: vec![0; n * k], distances: vec![0.0; n * k] }
    }

    pub(crate) fn parts_mut(&mut self) -> (&mut [u32], &mut [u32], &mut [f32]) {
        (&mut self.lens, &mut self.slots, &mut self.distances)
    }

    /// Number of queries.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// `true` when there were no queries.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Query `i`'s neighbours: slots and distances (smaller is closer), nearest first. The
    /// exact index always returns k; HNSW returns fewer only when its walk cannot reach k
    /// items passing the filter.
    pub fn get(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, n) = (i * self.k, self.lens[i] as usize);
        (&self.slots[a..a + n], &self.distances[a..a + n])
    }
}

/// A searchable, editable, saveable set of items.
pub trait Index: Send + Sync {
    /// The metric.
    fn metric(&self) -> Metric;
    /// The dimension.
    fn dim(&self) -> usize;
    /// The storage precision.
    fn precision(&self) -> Precision;
    /// The caller's fingerprint of the model (and preprocessing) that made the vectors.
    fn fingerprint(&self) -> &str;
    /// Live items.
    fn len(&self) -> usize;
    /// `true` when no item is live.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Slots ever used (live + removed).
    fn slots(&self) -> usize;
    /// The id of `slot`.
    fn id(&self, slot: u32) -> &str;
    /// The slot of a live id.
    fn slot_of(&self, id: &str) -> Option<u32>;
    /// The tag of `slot`, when the index has tags.
    fn tag(&self, slot: u32) -> Option<&str>;
    /// The k nearest live items (passing the filter) of every query row.
    ///
    /// # Errors
    /// Bad rows (shape, dimension, NaN, overflow), `k = 0`, k larger than the candidates,
    /// a filter on an index without tags.
    fn search(&self, queries: Rows, k: usize, params: &SearchParams) -> Result<Neighbours>;
    /// Adds items; nothing changes on error.
    ///
    /// # Errors
    /// Bad rows, ids of the wrong count, an id already live, tags inconsistent with the index.
    fn add(&mut self, items: Items) -> Result<()>;
    /// Removes items by id: all or none; returns how many were removed.
    ///
    /// # Errors
    /// [`SearchError::UnknownId`] for an id that is not live.
    fn remove(&mut self, ids: &[&str]) -> Result<usize>;
    /// Writes the index to `path` atomically (the old file, if any, stays whole on error).
    ///
    /// # Errors
    /// I/O errors naming the file.
    fn save(&self, path: &Path) -> Result<()>;
}

pub(crate) fn check_k(k: usize, available: usize, what: &str) -> Result<()> {
    if k == 0 {
        return Err(crate::error::invalid("k", "must be at least 1"));
    }
    if k > available {
        return Err(SearchError::KTooLarge { k, available, input: what.into() });
    }
    Ok(())
}
