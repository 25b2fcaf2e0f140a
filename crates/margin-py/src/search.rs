//! `margin.knn` (exact, margin-eval's tiled-GEMM kNN) and `margin.Index` (margin-search:
//! exact `flat` or approximate `hnsw`, f32/f16/i8 storage, string ids, tags, removal, the
//! versioned checksummed file). Every reported distance is smaller-is-closer (the
//! conventions): for `dot` it is `−q·r`. An index pickles as the bytes of its file, so it
//! travels to Ray or Spark workers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use margin_eval::{Embeddings, Real};
use margin_search::{AnyIndex, Expect, FlatIndex, HnswIndex, HnswParams, Ids, Items, Precision, Rows, SearchParams, Spec};
use numpy::IntoPyArray;
use numpy::ndarray::Array2;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::arrays::{Matrix, matrix, slice};
use crate::errors;
use crate::evaluate::distance;

type Knn<'py> = (Bound<'py, numpy::PyArray2<i64>>, Bound<'py, numpy::PyArray2<f64>>);

fn knn_typed<T: Real>(q: &[T], r: &[T], qd: usize, rd: usize, k: usize, d: margin_eval::Distance) -> margin_eval::Result<(Vec<i64>, Vec<f64>, usize)> {
    let qe = Embeddings::new("queries", q, qd)?;
    let re = Embeddings::new("references", r, rd)?;
    let nb = margin_eval::knn(&qe, Some(&re), k, d)?;
    let sign = if d == margin_eval::Distance::Dot { -1.0 } else { 1.0 };
    let idx = nb.indices.iter().map(|&i| i64::from(i)).collect();
    let val = nb.values.iter().map(|v| sign * v.to_f64()).collect();
    Ok((idx, val, nb.n_queries))
}

/// Exact k nearest references of every query: `(indices [n, k] int64, distances [n, k]
/// float64)`, nearest first, ties by the smaller index.
#[pyfunction]
#[pyo3(signature = (queries, references, k, distance_="euclidean"))]
pub fn knn<'py>(py: Python<'py>, queries: &Bound<'py, PyAny>, references: &Bound<'py, PyAny>, k: usize, distance_: &str) -> PyResult<Knn<'py>> {
    let d = distance(distance_)?;
    let q = matrix(queries, "queries")?;
    let r = matrix(references, "references")?;
    let ((_, qd), (_, rd)) = (q.shape(), r.shape());
    let (idx, val, n) = match (&q, &r) {
        (Matrix::F32(a), Matrix::F32(b)) => {
            let (qs, rs) = (slice(a), slice(b));
            py.detach(|| knn_typed(qs, rs, qd, rd, k, d))
        }
        _ => {
            let (qv, rv) = (crate::arrays::to_f64(&q), crate::arrays::to_f64(&r));
            py.detach(|| knn_typed(&qv, &rv, qd, rd, k, d))
        }
    }
    .map_err(errors::eval)?;
    let shape = (n, k);
    let idx = Array2::from_shape_vec(shape, idx).expect("n × k results").into_pyarray(py);
    let val = Array2::from_shape_vec(shape, val).expect("n × k results").into_pyarray(py);
    Ok((idx, val))
}

/// A search index over margin-search (`kind`: `flat` exact, `hnsw` approximate).
#[pyclass(name = "Index", module = "margin._margin")]
pub struct PyIndex {
    inner: AnyIndex,
}

/// Rows as f32 (margin-search stores f32; f64 input is narrowed, a copy).
fn rows_f32<'a>(m: &'a Matrix<'_>) -> std::borrow::Cow<'a, [f32]> {
    match m {
        Matrix::F32(a) => std::borrow::Cow::Borrowed(slice(a)),
        Matrix::F64(a) => std::borrow::Cow::Owned(slice(a).iter().map(|&v| v as f32).collect()),
    }
}

fn ids_of(ids: Option<Vec<String>>) -> PyResult<Option<Ids>> {
    ids.map(|v| Ids::from_strings("ids", v)).transpose().map_err(errors::search)
}

static TEMP: AtomicU64 = AtomicU64::new(0);

/// A private temporary path for the pickling round trip.
fn temp_path() -> PathBuf {
    let n = TEMP.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("margin-py-{}-{n}.index", std::process::id()))
}

struct Removing(PathBuf);
impl Drop for Removing {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[pymethods]
impl PyIndex {
    /// An empty index of dimension `dim`.
    #[new]
    #[pyo3(signature = (dim, metric="euclidean", kind="flat", precision="f32", m=16, ef_construction=100, seed=0, threads=0, fingerprint="", tagged=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(dim: i64, metric: &str, kind: &str, precision: &str, m: usize, ef_construction: usize, seed: u64, threads: usize, fingerprint: &str, tagged: bool) -> PyResult<Self> {
        let dim = usize::try_from(dim).map_err(|_| PyValueError::new_err(format!("invalid dimension: {dim} (must be 1..=65536)")))?;
        let spec = Spec {
            metric: margin_search::parse_metric(metric).map_err(errors::search)?,
            dim,
            precision: Precision::parse(precision).map_err(errors::search)?,
            fingerprint: fingerprint.to_string(),
            tagged,
        };
        let inner = match kind {
            "flat" => AnyIndex::Flat(FlatIndex::new(&spec).map_err(errors::search)?),
            "hnsw" => AnyIndex::Hnsw(HnswIndex::new(&spec, HnswParams { m, ef_construction, seed, threads }).map_err(errors::search)?),
            other => return Err(PyValueError::new_err(format!("invalid kind: {other:?} (expected flat or hnsw)"))),
        };
        Ok(Self { inner })
    }

    /// A new index holding `vectors` (dimension from their shape; the other settings as
    /// for the constructor).
    #[staticmethod]
    #[pyo3(signature = (vectors, ids=None, tags=None, metric="euclidean", kind="flat", precision="f32", m=16, ef_construction=100, seed=0, threads=0, fingerprint="", tagged=false))]
    #[allow(clippy::too_many_arguments)]
    fn build(py: Python<'_>, vectors: &Bound<'_, PyAny>, ids: Option<Vec<String>>, tags: Option<Vec<String>>, metric: &str, kind: &str, precision: &str, m: usize, ef_construction: usize, seed: u64, threads: usize, fingerprint: &str, tagged: bool) -> PyResult<Self> {
        let dim = matrix(vectors, "vectors")?.shape().1;
        let mut index = Self::new(dim as i64, metric, kind, precision, m, ef_construction, seed, threads, fingerprint, tagged || tags.is_some())?;
        index.add(py, vectors, ids, tags)?;
        Ok(index)
    }

    /// Adds rows (`[n, dim]`), with optional string ids (default: slot numbers) and tags.
    #[pyo3(signature = (vectors, ids=None, tags=None))]
    fn add(&mut self, py: Python<'_>, vectors: &Bound<'_, PyAny>, ids: Option<Vec<String>>, tags: Option<Vec<String>>) -> PyResult<()> {
        let m = matrix(vectors, "vectors")?;
        let dim = m.shape().1;
        let data = rows_f32(&m);
        let ids = ids_of(ids)?;
        let inner = &mut self.inner;
        py.detach(|| {
            let items = Items { rows: Rows::new("vectors", &data, dim), ids, tags: tags.as_deref() };
            inner.as_index_mut().add(items)
        })
        .map_err(errors::search)
    }

    /// Removes items by id (all or none); returns how many were removed.
    fn remove(&mut self, ids: Vec<String>) -> PyResult<usize> {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.inner.as_index_mut().remove(&refs).map_err(errors::search)
    }

    /// The k nearest live items of each query: `(ids, distances)`, `ids` a list of lists of
    /// str, `distances` `[n, k]` float32 (smaller is closer; `inf` pads a row HNSW could not
    /// fill).
    #[pyo3(signature = (queries, k, ef=64, tags=None))]
    fn search<'py>(&self, py: Python<'py>, queries: &Bound<'py, PyAny>, k: i64, ef: usize, tags: Option<Vec<String>>) -> PyResult<(Vec<Vec<String>>, Bound<'py, numpy::PyArray2<f32>>)> {
        let k = usize::try_from(k).ok().filter(|&k| k >= 1).ok_or_else(|| PyValueError::new_err(format!("invalid k: {k} (must be at least 1)")))?;
        let m = matrix(queries, "queries")?;
        let dim = m.shape().1;
        let data = rows_f32(&m);
        let index = self.inner.as_index();
        let params = SearchParams { ef, tags };
        let nb = py.detach(|| index.search(Rows::new("queries", &data, dim), k, &params)).map_err(errors::search)?;
        let n = nb.len();
        let mut ids = Vec::with_capacity(n);
        let mut dist = vec![f32::INFINITY; n * k];
        for i in 0..n {
            let (slots, d) = nb.get(i);
            ids.push(slots.iter().map(|&s| index.id(s).to_string()).collect());
            dist[i * k..i * k + d.len()].copy_from_slice(d);
        }
        let dist = Array2::from_shape_vec((n, k), dist).expect("n × k").into_pyarray(py);
        Ok((ids, dist))
    }

    /// Writes the index file atomically.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        self.inner.as_index().save(&path).map_err(errors::search)
    }

    /// Opens an index file (version, checksums and `dim`/`metric`/`fingerprint` checked when given).
    #[staticmethod]
    #[pyo3(signature = (path, dim=None, metric=None, fingerprint=None))]
    fn load(path: PathBuf, dim: Option<usize>, metric: Option<&str>, fingerprint: Option<String>) -> PyResult<Self> {
        let metric = metric.map(margin_search::parse_metric).transpose().map_err(errors::search)?;
        let inner = margin_search::open(&path, &Expect { fingerprint, dim, metric }).map_err(errors::search)?;
        Ok(Self { inner })
    }

    /// The index file's bytes (what pickling stores).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let path = Removing(temp_path());
        self.inner.as_index().save(&path.0).map_err(errors::search)?;
        let bytes = std::fs::read(&path.0).map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("cannot read {}: {e}", path.0.display())))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// An index from the bytes of its file.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        let path = Removing(temp_path());
        write_private(&path.0, data)?;
        let inner = margin_search::open(&path.0, &Expect::default()).map_err(errors::search)?;
        Ok(Self { inner })
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let ctor = py.get_type::<PyIndex>().getattr("from_bytes")?;
        Ok((ctor, (self.to_bytes(py)?,)))
    }

    fn __len__(&self) -> usize {
        self.inner.as_index().len()
    }

    /// The metric's name.
    #[getter]
    fn metric(&self) -> &'static str {
        self.inner.as_index().metric().name()
    }

    /// The dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.as_index().dim()
    }

    /// The storage precision (`f32`, `f16`, `i8`).
    #[getter]
    fn precision(&self) -> &'static str {
        self.inner.as_index().precision().name()
    }

    /// `flat` or `hnsw`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner {
            AnyIndex::Flat(_) => "flat",
            AnyIndex::Hnsw(_) => "hnsw",
        }
    }

    /// The model fingerprint given at creation.
    #[getter]
    fn fingerprint(&self) -> String {
        self.inner.as_index().fingerprint().to_string()
    }

    /// The ids of the live items, in slot order.
    fn ids(&self) -> Vec<String> {
        let index = self.inner.as_index();
        (0..index.slots() as u32).filter(|&s| index.slot_of(index.id(s)) == Some(s)).map(|s| index.id(s).to_string()).collect()
    }

    fn __repr__(&self) -> String {
        format!("margin.Index(kind={:?}, metric={:?}, dim={}, precision={:?}, len={})", self.kind(), self.metric(), self.dim(), self.precision(), self.__len__())
    }
}

fn write_private(path: &Path, data: &[u8]) -> PyResult<()> {
    std::fs::write(path, data).map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("cannot write {}: {e}", path.display())))
}
