//! The retrieval core of `margin.AccuracyCalculator`: pytorch-metric-learning's (PML 2.9)
//! per-query `precision_at_1`, `r_precision`, `mean_average_precision_at_r`,
//! `mean_average_precision` and `mean_reciprocal_rank`, from margin-eval's exact kNN.
//!
//! PML's semantics, reproduced exactly (its `accuracy_calculator.py`):
//! - `R` of a query = the references with its label, minus one when the reference includes
//!   the query (`ref_includes_query`); a query with `R <= 0` is *lone* and excluded.
//! - With `ref_includes_query`, `k + 1` neighbours are searched and the query's own index is
//!   removed from its row (or, when it is not among them, the last neighbour), as PML's
//!   `FaissKNN` + `return_results` do — the reference's first `len(query)` rows are the queries.
//! - `r_precision` = matches among the first `min(R, k)` / `min(R, k)`;
//!   `mean_average_precision_at_r` = `Σ_{i < min(R,k), rel_i} P(i) / R` (divided by `R`
//!   even when `k < R`, as PML does); `mean_average_precision` = the same over all `k`
//!   columns, divided by `R`; `mean_reciprocal_rank` = `1 / rank` of the first match within
//!   k, else 0; `precision_at_1` = `rel_1`.
//!
//! The search ranks by the squared Euclidean distance in the input's precision (PML: faiss
//! `IndexFlatL2` in float32), ties by the smaller reference index. Memory: the `n × k`
//! neighbour table, never `n × m`. Averaging (over queries, `avg_of_avgs`, per class) is
//! done by the Python layer over the arrays returned here.

use std::collections::HashMap;

use margin_eval::{Distance, Embeddings, Real, knn};
use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{Matrix, label_slice, labels, matrix, slice, to_f64};
use crate::errors;

/// Per-query values; lone queries hold NaN.
#[derive(Default)]
pub struct PerQuery {
    pub precision_at_1: Vec<f64>,
    pub r_precision: Vec<f64>,
    pub map_at_r: Vec<f64>,
    pub map: Vec<f64>,
    pub mrr: Vec<f64>,
    pub not_lone: Vec<bool>,
}

/// The neighbour table: `n × k` reference indices, best first, own row removed as PML does.
fn neighbours<T: Real>(q: &[T], r: &[T], dim: usize, k: usize, ref_includes_query: bool) -> margin_eval::Result<Vec<u32>> {
    let qe = Embeddings::new("query", q, dim)?;
    let re = Embeddings::new("reference", r, dim)?;
    let search_k = k + usize::from(ref_includes_query);
    let nb = knn(&qe, Some(&re), search_k, Distance::SquaredEuclidean)?;
    if !ref_includes_query {
        return Ok(nb.indices);
    }
    let mut out = Vec::with_capacity(nb.n_queries * k);
    for i in 0..nb.n_queries {
        let row = nb.indices_of(i);
        match row.iter().position(|&j| j as usize == i) {
            Some(p) => out.extend(row.iter().enumerate().filter(|&(c, _)| c != p).map(|(_, &j)| j)),
            None => out.extend_from_slice(&row[..k]),
        }
    }
    Ok(out)
}

/// PML's per-query metrics from the neighbour table.
pub fn per_query(nb: &[u32], k: usize, ql: &[i64], rl: &[i64], ref_includes_query: bool) -> PerQuery {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for &l in rl {
        *counts.entry(l).or_default() += 1;
    }
    let n = ql.len();
    let mut out = PerQuery::default();
    for (i, &label) in ql.iter().enumerate() {
        let r = counts.get(&label).copied().unwrap_or(0) as i64 - i64::from(ref_includes_query);
        let row = &nb[i * k..(i + 1) * k];
        if r <= 0 {
            for v in [&mut out.precision_at_1, &mut out.r_precision, &mut out.map_at_r, &mut out.map, &mut out.mrr] {
                v.push(f64::NAN);
            }
            out.not_lone.push(false);
            continue;
        }
        let r = r as usize;
        let window = r.min(k);
        let (mut hits, mut hits_window, mut ap_r, mut ap, mut first) = (0usize, 0usize, 0.0f64, 0.0f64, None);
        for (c, &j) in row.iter().enumerate() {
            if rl[j as usize] != label {
                continue;
            }
            hits += 1;
            let p = hits as f64 / (c + 1) as f64;
            ap += p;
            if c < window {
                hits_window += 1;
                ap_r += p;
            }
            first.get_or_insert(c + 1);
        }
        out.precision_at_1.push(if rl[row[0] as usize] == label { 1.0 } else { 0.0 });
        out.r_precision.push(hits_window as f64 / window as f64);
        out.map_at_r.push(ap_r / r as f64);
        out.map.push(ap / r as f64);
        out.mrr.push(first.map_or(0.0, |f| 1.0 / f as f64));
        out.not_lone.push(true);
    }
    debug_assert_eq!(out.not_lone.len(), n);
    out
}

/// Runs the search and the per-query metrics; returns a dict of numpy arrays.
#[pyfunction]
#[pyo3(signature = (query, query_labels, reference, reference_labels, ref_includes_query, k))]
pub fn pml_retrieval<'py>(
    py: Python<'py>,
    query: &Bound<'py, PyAny>,
    query_labels: &Bound<'py, PyAny>,
    reference: &Bound<'py, PyAny>,
    reference_labels: &Bound<'py, PyAny>,
    ref_includes_query: bool,
    k: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let q = matrix(query, "query")?;
    let r = matrix(reference, "reference")?;
    let ql = labels(query_labels, "query_labels")?;
    let rl = labels(reference_labels, "reference_labels")?;
    let (qls, rls) = (label_slice(&ql), label_slice(&rl));
    let (nq, dim) = q.shape();
    let (nr, rdim) = r.shape();
    if qls.len() != nq || rls.len() != nr {
        return Err(PyValueError::new_err(format!(
            "embeddings and labels must have the same length: query has {nq} rows and {} labels, reference {nr} rows and {} labels",
            qls.len(),
            rls.len()
        )));
    }
    if dim != rdim {
        return Err(PyValueError::new_err(format!("dimension mismatch: query has dimension {dim} but reference has dimension {rdim}")));
    }
    if ref_includes_query && nr < nq {
        return Err(PyValueError::new_err(format!("ref_includes_query: the reference ({nr} rows) must begin with the {nq} queries")));
    }
    let available = nr - usize::from(ref_includes_query).min(nr);
    if k == 0 || k > available {
        return Err(PyValueError::new_err(format!("k = {k} neighbours asked for, but the reference offers {available} per query")));
    }
    let nb = match (&q, &r) {
        (Matrix::F32(a), Matrix::F32(b)) => {
            let (qs, rs) = (slice(a), slice(b));
            py.detach(|| neighbours(qs, rs, dim, k, ref_includes_query))
        }
        _ => {
            let (qv, rv) = (to_f64(&q), to_f64(&r));
            py.detach(|| neighbours(&qv, &rv, dim, k, ref_includes_query))
        }
    }
    .map_err(errors::eval)?;
    let m = py.detach(|| per_query(&nb, k, qls, rls, ref_includes_query));
    let d = PyDict::new(py);
    d.set_item("precision_at_1", m.precision_at_1.into_pyarray(py))?;
    d.set_item("r_precision", m.r_precision.into_pyarray(py))?;
    d.set_item("mean_average_precision_at_r", m.map_at_r.into_pyarray(py))?;
    d.set_item("mean_average_precision", m.map.into_pyarray(py))?;
    d.set_item("mean_reciprocal_rank", m.mrr.into_pyarray(py))?;
    d.set_item("not_lone", PyArray1::from_vec(py, m.not_lone))?;
    Ok(d)
}

/// k-means (k-means++ seeded, Lloyd) cluster assignments' NMI/AMI against the query
/// labels, with as many clusters as distinct labels (PML: faiss k-means, 20 iterations,
/// unseeded): `(nmi, ami)`.
#[pyfunction]
#[pyo3(signature = (query, query_labels, seed=0))]
pub fn nmi_ami(py: Python<'_>, query: &Bound<'_, PyAny>, query_labels: &Bound<'_, PyAny>, seed: u64) -> PyResult<(f64, f64)> {
    let q = matrix(query, "query")?;
    let ql = labels(query_labels, "query_labels")?;
    let qls = label_slice(&ql);
    let dim = q.shape().1;
    let config = margin_eval::ClusteringConfig { seed, ..Default::default() };
    match &q {
        Matrix::F32(a) => {
            let s = slice(a);
            py.detach(|| clusters(s, dim, qls, &config))
        }
        Matrix::F64(a) => {
            let s = slice(a);
            py.detach(|| clusters(s, dim, qls, &config))
        }
    }
    .map_err(errors::eval)
}

fn clusters<T: Real>(v: &[T], dim: usize, labels: &[i64], config: &margin_eval::ClusteringConfig) -> margin_eval::Result<(f64, f64)> {
    let set = margin_eval::Labelled::new(Embeddings::new("query", v, dim)?, "query_labels", labels)?;
    let c = margin_eval::clustering(&set, Distance::Euclidean, config)?;
    Ok((c.nmi, c.ami))
}
