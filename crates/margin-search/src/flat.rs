//! The exact backend: margin-eval's tiled-GEMM kNN (the workspace's one exact kNN) over the
//! stored f32 rows. It is the ground truth the HNSW backend's recall is measured against,
//! and the right index for small galleries.
//!
//! Removed slots and a tag filter are honoured by gathering the admitted rows into one
//! buffer (with the slot of each) before the scan: the kNN stays the one exact kNN, and
//! since the gathered order is the slot order, its ties (smaller row first) are still ties
//! by the smaller slot. Cosine rows are stored unit-length, so the scan is margin-eval's
//! `dot` on them (no per-search copy of the gallery), reported as `1 − q̂·r̂`.

use std::path::Path;

use margin_eval::{Distance, Embeddings, KnnOptions, knn_with};

use crate::core::{Core, Spec};
use crate::error::{Result, SearchError, invalid};
use crate::index::{Index, Items, Neighbours, Rows, SearchParams};
use crate::metric::{Metric, normalise};
use crate::store::Precision;

/// Exact search over f32 rows.
#[derive(Clone, Debug, PartialEq)]
pub struct FlatIndex {
    pub(crate) core: Core,
    options: KnnOptions,
}

fn eval_error(e: margin_eval::EvalError) -> SearchError {
    invalid("exact search", e.to_string())
}

impl FlatIndex {
    /// An empty exact index (f32 storage only: it scans the rows as stored).
    ///
    /// # Errors
    /// A precision other than f32, a dimension out of range, a fingerprint over 4 KiB.
    pub fn new(spec: &Spec) -> Result<Self> {
        if spec.precision != Precision::F32 {
            return Err(invalid("precision", format!("the exact index stores f32 rows, not {}", spec.precision.name())));
        }
        Ok(Self { core: Core::new(spec)?, options: KnnOptions::default() })
    }

    /// An index holding `items`.
    ///
    /// # Errors
    /// As [`FlatIndex::new`] and [`Index::add`].
    pub fn build(spec: &Spec, items: Items) -> Result<Self> {
        let mut index = Self::new(spec)?;
        index.add(items)?;
        Ok(index)
    }

    pub(crate) fn from_core(core: Core) -> Self {
        Self { core, options: KnnOptions::default() }
    }

    /// Opens a saved exact index (see [`crate::open`]).
    ///
    /// # Errors
    /// As [`crate::open`], and when the file holds an HNSW index.
    pub fn open(path: &Path, expect: &crate::Expect) -> Result<Self> {
        match crate::open(path, expect)? {
            crate::AnyIndex::Flat(f) => Ok(f),
            crate::AnyIndex::Hnsw(_) => Err(invalid("index kind", format!("{} holds an HNSW index, not an exact one", path.display()))),
        }
    }
}

impl Index for FlatIndex {
    fn metric(&self) -> Metric {
        self.core.store.metric
    }
    fn dim(&self) -> usize {
        self.core.store.dim
    }
    fn precision(&self) -> Precision {
        Precision::F32
    }
    fn fingerprint(&self) -> &str {
        &self.core.fingerprint
    }
    fn len(&self) -> usize {
        self.core.cat.live_count()
    }
    fn slots(&self) -> usize {
        self.core.cat.slots()
    }
    fn id(&self, slot: u32) -> &str {
        self.core.cat.id(slot)
    }
    fn slot_of(&self, id: &str) -> Option<u32> {
        self.core.cat.find(id)
    }
    fn tag(&self, slot: u32) -> Option<&str> {
        self.core.tag(slot)
    }

    fn search(&self, queries: Rows, k: usize, params: &SearchParams) -> Result<Neighbours> {
        let dim = self.dim();
        let (n, allow) = self.core.start_search(&queries, k, params)?;
        let cat = &self.core.cat;
        let rows = self.core.store.f32_rows().expect("the exact index stores f32 rows");
        let (gallery, slot_of): (std::borrow::Cow<[f32]>, Option<Vec<u32>>) = if allow.all() {
            (rows.into(), None)
        } else {
            let slots: Vec<u32> = (0..cat.slots() as u32).filter(|&s| allow.ok(s)).collect();
            let mut g = Vec::with_capacity(slots.len() * dim);
            for &s in &slots {
                g.extend_from_slice(&rows[s as usize * dim..(s as usize + 1) * dim]);
            }
            (g.into(), Some(slots))
        };
        let metric = self.metric();
        let q: std::borrow::Cow<[f32]> = if metric == Metric::Cosine {
            let mut q = queries.data.to_vec();
            q.chunks_exact_mut(dim).for_each(normalise);
            q.into()
        } else {
            queries.data.into()
        };
        let distance = match metric {
            Metric::Euclidean => Distance::Euclidean,
            Metric::SquaredEuclidean => Distance::SquaredEuclidean,
            Metric::Cosine | Metric::Dot => Distance::Dot,
        };
        let qe = Embeddings::new(queries.input, &q, dim).map_err(eval_error)?;
        let re = Embeddings::new("the index", &gallery, dim).map_err(eval_error)?;
        let nb = knn_with(&qe, Some(&re), k, distance, &self.options).map_err(eval_error)?;
        let mut out = Neighbours::new(k, n);
        let (lens, slots, dists) = out.parts_mut();
        lens.iter_mut().for_each(|l| *l = k as u32);
        for (i, (&row, &v)) in nb.indices.iter().zip(&nb.values).enumerate() {
            slots[i] = slot_of.as_ref().map_or(row, |m| m[row as usize]);
            dists[i] = match metric {
                Metric::Euclidean | Metric::SquaredEuclidean => v,
                Metric::Cosine => 1.0 - v,
                Metric::Dot => -v,
            };
        }
        Ok(out)
    }

    fn add(&mut self, items: Items) -> Result<()> {
        self.core.add(items).map(|_| ())
    }

    fn remove(&mut self, ids: &[&str]) -> Result<usize> {
        self.core.cat.remove(ids).map(|s| s.len())
    }

    fn save(&self, path: &Path) -> Result<()> {
        crate::format::save(path, &self.core, None)
    }
}
