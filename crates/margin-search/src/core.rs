//! The state both backends share: the model fingerprint, the vectors and the catalog (ids,
//! removals, tags), with the one add path that validates a batch completely before
//! changing anything.

use crate::catalog::{Allow, Catalog};
use crate::error::{Result, SearchError};
use crate::ids::Ids;
use crate::index::{Items, Rows, SearchParams, check_k};
use crate::metric::Metric;
use crate::store::{Precision, Store};

/// Fingerprint, vectors, catalog.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Core {
    pub fingerprint: String,
    pub store: Store,
    pub cat: Catalog,
}

/// Longest fingerprint accepted (it is an opaque label, not a payload).
pub(crate) const MAX_FINGERPRINT: usize = 4096;

/// The settings every index is created with.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The metric.
    pub metric: Metric,
    /// The dimension.
    pub dim: usize,
    /// The storage precision.
    pub precision: Precision,
    /// The model (with its preprocessing) that produced the vectors: an opaque string,
    /// compared on open.
    pub fingerprint: String,
    /// Whether every item carries a tag (for filtered search).
    pub tagged: bool,
}

impl Spec {
    /// An untagged f32 index.
    pub fn new(metric: Metric, dim: usize, fingerprint: impl Into<String>) -> Self {
        Self { metric, dim, precision: Precision::F32, fingerprint: fingerprint.into(), tagged: false }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.dim == 0 || self.dim > margin_max_dim() {
            return Err(crate::error::invalid("dimension", format!("{} (must be 1..={})", self.dim, margin_max_dim())));
        }
        if self.fingerprint.len() > MAX_FINGERPRINT || self.fingerprint.contains('\n') {
            return Err(crate::error::invalid("model fingerprint", format!("at most {MAX_FINGERPRINT} bytes on one line")));
        }
        Ok(())
    }
}

/// The workspace's dimension bound (`margin::check::MAX_DIM`, which this Burn-free crate
/// cannot import; the same number).
pub(crate) const fn margin_max_dim() -> usize {
    65_536
}

impl Core {
    /// What every backend's search checks first: the queries' shape (returns their count),
    /// the tag filter, and k against the live items passing it.
    pub fn start_search(&self, queries: &Rows, k: usize, params: &SearchParams) -> Result<(usize, Allow<'_>)> {
        let n = queries.check(self.store.dim)?;
        let allow = self.cat.allow(queries.input, params.tags.as_deref())?;
        check_k(k, self.cat.count(&allow), "the index (live items passing the filter)")?;
        Ok((n, allow))
    }

    pub fn new(spec: &Spec) -> Result<Self> {
        spec.check()?;
        Ok(Self { fingerprint: spec.fingerprint.clone(), store: Store::new(spec.metric, spec.dim, spec.precision), cat: Catalog::new(spec.tagged) })
    }

    /// Validates and appends a batch; returns the first new slot and the count. Nothing
    /// changes on error.
    pub fn add(&mut self, items: Items) -> Result<(usize, usize)> {
        let n = items.rows.check(self.store.dim)?;
        let start = self.cat.slots();
        if start + n > u32::MAX as usize {
            return Err(crate::error::invalid("index size", "more than 2^32-1 items"));
        }
        let ids = match items.ids {
            Some(ids) => {
                ids.check_count(items.rows.input, n)?;
                ids
            }
            None => Ids::rows(start, n),
        };
        self.cat.check_add(items.rows.input, ids.names(), items.tags)?;
        self.store.push_rows(items.rows.input, items.rows.data)?;
        self.cat.commit_add(ids.into_names(), items.tags);
        Ok((start, n))
    }

    pub fn tag(&self, slot: u32) -> Option<&str> {
        self.cat.tags.as_ref().map(|t| t.names[t.of_slot[slot as usize] as usize].as_str())
    }

    pub fn check_fingerprint(&self, path: &std::path::Path, expected: Option<&str>) -> Result<()> {
        match expected {
            Some(e) if e != self.fingerprint => Err(SearchError::ModelMismatch { path: path.into(), expected: e.into(), found: self.fingerprint.clone() }),
            _ => Ok(()),
        }
    }
}
